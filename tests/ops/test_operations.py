"""Operating it (SPEC §15): readiness, metrics, request ids in JSON logs, and the README's backup
and restore, done exactly as written."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid

import httpx
import pytest

from portal import devdb
from portal.mail import Mail
from tests.factories import unique
from tests.mail_sink import mail_settings
from tests.servers import portal_server, server_log


async def test_readyz_says_ready_when_the_database_answers_and_is_migrated(client):
    from portal.ops import readiness

    readiness.forget()
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"ready": True}
    assert r.headers["cache-control"] == "no-store"


async def test_readyz_is_503_with_a_migration_pending_or_no_database_and_says_why_only_in_the_log(client, monkeypatch, caplog, tmp_path):
    from portal.db import engine as db
    from portal.ops import readiness

    caplog.set_level("WARNING", logger="portal.ops.readiness")
    shipped = readiness.shipped_migrations()
    monkeypatch.setattr(readiness, "shipped_migrations", lambda: shipped | {"2099-01-01T00:00:00:000000"})  # a release ahead of its database
    readiness.forget()
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json() == {"ready": False}  # nothing about the release for whoever asks
    assert "migrations pending: 2099-01-01T00:00:00:000000" in caplog.text
    monkeypatch.undo()

    class Down:
        async def __aenter__(self):
            raise OSError("connection refused")

        async def __aexit__(self, *exc):
            return False

    monkeypatch.setattr(db, "connection", lambda: Down())
    readiness.forget()
    r = await client.get("/readyz")
    assert r.status_code == 503 and r.json() == {"ready": False}
    assert "the database is unavailable (OSError: connection refused)" in caplog.text
    assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
    monkeypatch.undo()

    # Every pooled connection serving a request: busy, not broken — the last answer stands; a
    # database that does not answer while connections are free is not ready.
    class Hang(Down):
        async def __aenter__(self):
            await asyncio.sleep(60)

    monkeypatch.setattr(db, "connection", lambda: Hang())
    monkeypatch.setattr(readiness, "CHECK_TIMEOUT", 0.05)
    for busy, last, answer in ((True, True, 200), (True, False, 503), (False, True, 503)):
        monkeypatch.setattr(readiness, "_pool_busy", lambda: busy)
        readiness._last = (0.0, last)  # an earlier answer, too old to be reused as it is
        assert (await client.get("/readyz")).status_code == answer, (busy, last)
    monkeypatch.undo()

    # A release whose migrations folder cannot be listed cannot tell whether its database is current.
    readiness.shipped_migrations.cache_clear()
    monkeypatch.setattr(readiness, "MIGRATIONS", tmp_path / "missing")
    readiness.forget()
    try:
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.json() == {"ready": False}
        assert "migrations cannot be listed" in caplog.text
    finally:
        monkeypatch.undo()
        readiness.shipped_migrations.cache_clear()
        readiness.forget()


async def test_a_flood_of_readiness_probes_costs_one_query_a_second(client, monkeypatch):
    from portal.db import engine as db
    from portal.ops import readiness

    opened = 0
    real = db.connection

    def counting():
        nonlocal opened
        opened += 1
        return real()

    monkeypatch.setattr(db, "connection", counting)
    readiness.forget()
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    answers += [await client.get("/readyz") for _ in range(20)]
    assert {r.status_code for r in answers} == {200} and opened == 1
    await asyncio.sleep(readiness.CACHE_SECONDS + 0.1)
    assert (await client.get("/readyz")).status_code == 200 and opened == 2


async def test_metrics_need_the_token_and_count_requests_pool_jobs_and_the_outbox(client, app):
    from portal.db import engine as db
    from portal.mail import queue as mail_queue

    assert (await client.get("/metrics")).status_code == 404  # no METRICS_TOKEN: no metrics
    token = uuid.uuid4().hex
    with mail_settings(metrics_token=token):
        r = await client.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
        async with db.transaction():
            await mail_queue.enqueue(Mail(to="metrics@example.test", subject="s", text="t", html="<p>t</p>", kind="test"))
        r = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    healthz = re.search(r'portal_http_requests_total\{method="GET",route="orgs.healthz",status="200"\} (\d+)', text)
    assert healthz and float(healthz.group(1)) >= 3
    assert 'portal_http_request_duration_seconds_bucket{le="0.005",route="orgs.healthz"}' in text
    for state in ("max", "size", "in_use", "idle", "waiting"):
        assert f'portal_db_pool_connections{{state="{state}"}}' in text
    assert 'portal_jobs{kind="export",status="queued"}' in text and 'portal_jobs{kind="mail",status="dead"}' in text
    backlog = float(re.search(r"^portal_outbox_backlog (\S+)$", text, re.MULTILINE).group(1))
    oldest = float(re.search(r"^portal_outbox_oldest_age_seconds (\S+)$", text, re.MULTILINE).group(1))
    assert backlog >= 1 and oldest >= 0
    await mail_queue.drain()


async def test_metrics_count_the_status_sent_for_an_error_a_middleware_raised(client):
    """CSRF refuses in a middleware, before the handler: the request counts as the 403 it got."""
    token = uuid.uuid4().hex

    async def count(status: str) -> float:
        with mail_settings(metrics_token=token):
            text = (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
        found = re.search(rf'portal_http_requests_total\{{method="POST",route="account.login",status="{status}"\}} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    before_403, before_500 = await count("403"), await count("500")
    refused = await client.post("/login", {"email": "x@example.test", "password": "whatever-long"}, csrf=False)
    assert refused.status_code == 403
    assert await count("403") == before_403 + 1 and await count("500") == before_500


async def test_metrics_answer_while_the_database_does_not(client, monkeypatch):
    """A scrape during an outage still gives this process's counters and pool, and says the
    database's figures could not be read (``portal_db_up 0``)."""
    from portal.db import engine as db

    token = uuid.uuid4().hex

    async def scrape() -> str:
        with mail_settings(metrics_token=token):
            r = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        return r.text

    assert "portal_db_up 1.0" in await scrape()

    class Down:
        async def __aenter__(self):
            raise OSError("connection refused")

        async def __aexit__(self, *exc):
            return False

    monkeypatch.setattr(db, "transaction", lambda **_: Down())
    text = await scrape()
    assert "portal_db_up 0.0" in text and 'portal_db_pool_connections{state="max"}' in text and "portal_http_requests_total" in text


async def test_a_client_inventing_methods_adds_no_metrics_series(client):
    """Servers accept any method token; the request counter names only the ones the portal serves."""
    token = uuid.uuid4().hex
    invented = [f"X{uuid.uuid4().hex[:8].upper()}" for _ in range(5)]
    for method in invented:
        r = await client.http.request(method, f"/{method.lower()}")
        assert r.status_code in (404, 405)
    with mail_settings(metrics_token=token):
        text = (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    assert not any(method in text for method in invented)
    other = re.search(r'portal_http_requests_total\{method="other",route="unmatched",status="\d+"\} (\S+)', text)
    assert other and float(other.group(1)) >= 5


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
async def test_json_logs_carry_the_request_id_a_proxy_sent_or_a_new_one(database, server):
    with portal_server(database, "json-logs.log", server=server, LOG_FORMAT="json", PORTAL_ACCESS_LOG="1") as base:
        async with httpx.AsyncClient(base_url=base) as c:
            given = await c.get("/healthz", headers={"X-Request-ID": "edge-4711"})
            fresh = await c.get("/readyz")
            odd = await c.get("/healthz", headers={"X-Request-ID": "not ok/" * 20})  # not an id we pass on
    assert given.headers["x-request-id"] == "edge-4711"
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"]) and re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
    lines = [line for line in server_log(database, "json-logs.log").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "portal.access"]
    assert {e["request_id"] for e in access} >= {"edge-4711", fresh.headers["x-request-id"]}
    assert all({"time", "level", "logger", "request_id", "message"} <= e.keys() for e in entries)


async def test_an_x_request_id_is_taken_only_from_a_trusted_proxy(monkeypatch):
    """The layers a server runs the app in (``portal.app.served``): a client that reaches the
    portal directly gets a fresh id whatever it sends; the proxy in FORWARDED_ALLOW_IPS passes its
    own on, also when it forwards a client's address."""
    from portal import logs
    from portal.app import served

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.2")

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-logged-as", logs.request_id.get().encode())]})
        await send({"type": "http.response.body", "body": b""})

    stack = served(inner)

    async def request_id_for(peer: str, **headers: str) -> tuple[str, str]:
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {
            "type": "http", "method": "GET", "path": "/healthz", "query_string": b"", "root_path": "", "scheme": "http",
            "http_version": "1.1", "client": (peer, 40000), "server": ("127.0.0.1", 8000),
            "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
        }
        await stack(scope, receive, send)
        response = dict(sent[0]["headers"])
        return response[b"x-request-id"].decode(), response[b"x-logged-as"].decode()

    for peer, headers in (("203.0.113.7", {}), ("127.0.0.1", {}), ("203.0.113.7", {"X_Forwarded_For": "10.0.0.2"})):
        rid, logged = await request_id_for(peer, X_Request_ID="chosen-by-client", **headers)
        assert rid == logged and re.fullmatch(r"[0-9a-f]{32}", rid), (peer, rid)
    assert await request_id_for("10.0.0.2", X_Request_ID="edge-4711") == ("edge-4711", "edge-4711")
    assert await request_id_for("10.0.0.2", X_Request_ID="edge-4712", X_Forwarded_For="203.0.113.7") == ("edge-4712", "edge-4712")
    rid, _ = await request_id_for("10.0.0.2", X_Request_ID="not ok/" * 20)  # trusted, but not an id we pass on
    assert re.fullmatch(r"[0-9a-f]{32}", rid)


async def test_backup_and_restore_drill_exactly_as_the_readme_says(database, su, make_org, make_member):
    """pg_dump → an empty database owned by portal_owner → pg_restore → `portal migrate` → the
    portal on the restored copy: sign-in, pages and an export work."""
    from portal.accounts.sessions import COOKIE, token_hash

    org = await make_org(name=f"Backed Up {unique('b')}")
    await make_member(org, "member")
    restored = f"restore_{uuid.uuid4().hex[:8]}"
    dump = database.root / f"{restored}.dump"
    bindir, cluster = devdb.find_bindir(), database.cluster
    socket = ["-h", str(cluster.sockdir), "-p", str(cluster.port), "-U", "postgres"]
    subprocess.run([str(bindir / "pg_dump"), *socket, "-Fc", "-f", str(dump), "portal"], check=True, capture_output=True)
    await su.execute(f'CREATE DATABASE "{restored}" OWNER {devdb.OWNER_ROLE}')
    subprocess.run([str(bindir / "pg_restore"), *socket, "-d", restored, "--exit-on-error", str(dump)], check=True, capture_output=True)
    env = {**database.env(), "DATABASE_URL": cluster.url(devdb.APP_ROLE, restored), "MIGRATE_DATABASE_URL": cluster.url(devdb.OWNER_ROLE, restored)}
    migrated = subprocess.run([sys.executable, "-m", "portal.cli", "migrate"], env={**__import__("os").environ, **env}, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr

    copy = await cluster.superuser_connect(restored)
    try:
        token = uuid.uuid4().hex + uuid.uuid4().hex
        await copy.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), org.owner.id)
        with portal_server(database, "restored.log", DATABASE_URL=env["DATABASE_URL"], MIGRATE_DATABASE_URL=env["MIGRATE_DATABASE_URL"]) as base:
            async with httpx.AsyncClient(base_url=base, cookies={COOKIE: token}) as c:
                assert (await c.get("/readyz")).json()["ready"] is True
                members = await c.get(f"/orgs/{org.slug}/members")
                assert members.status_code == 200 and org.owner.email in members.text
                page = await c.get(f"/orgs/{org.slug}/exports")
                csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
                assert (await c.post(f"/orgs/{org.slug}/exports", data={"_csrf_token": csrf})).status_code == 303
                for _ in range(120):  # the restored portal's own export worker builds it
                    job = await copy.fetchrow("SELECT id, status FROM export_job WHERE org_id = $1 ORDER BY created_at DESC LIMIT 1", org.id)
                    if job["status"] == "done":
                        break
                    await asyncio.sleep(0.25)
                assert job["status"] == "done"
                download = await c.get(f"/orgs/{org.slug}/exports/{job['id']}/download")
                assert download.status_code == 200 and download.content[:2] == b"PK"
    finally:
        await copy.close()
        await su.execute(f'DROP DATABASE "{restored}" WITH (FORCE)')


async def test_a_postgresql_restart_under_load_recovers_without_restarting_the_app():
    """PostgreSQL stops for 10 s while four clients browse: every request is answered within the
    acquire timeout (200, or 503 with Retry-After while the database is away — never a hang or a
    500), the portal serves again on its own once PostgreSQL is back, and what was committed
    before the stop is still there. `make soak` runs it longer and busier (SOAK_OUTAGE,
    SOAK_CLIENTS) and writes its figures to SOAK_REPORT."""
    import os
    import time

    outage, clients_n = float(os.environ.get("SOAK_OUTAGE", "10")), int(os.environ.get("SOAK_CLIENTS", "4"))

    from portal.accounts.sessions import COOKIE, token_hash
    from tests.factories import PASSWORD_HASH
    from tests.pg import TestDatabase

    tdb = TestDatabase()  # a cluster of its own: the suite's keeps running
    await tdb.start()
    tdb.migrate()
    try:
        su = await tdb.cluster.superuser_connect()
        try:
            user = await su.fetchval("INSERT INTO app_user (email, name, password_hash, email_verified_at) VALUES ('ops@example.test', 'Ops', $1, now()) RETURNING id", PASSWORD_HASH)
            org = await su.fetchval("INSERT INTO organization (slug, name) VALUES ('restart-drill', 'Restart drill') RETURNING id")
            await su.execute("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, 'owner')", org, user)
            await su.execute("INSERT INTO billing_settings (org_id) VALUES ($1)", org)
            token = uuid.uuid4().hex + uuid.uuid4().hex
            await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), user)
        finally:
            await su.close()
        results: list[tuple[float, float, int | str]] = []
        running = True
        with portal_server(tdb, "restart.log", DB_ACQUIRE_TIMEOUT="2s", DB_POOL_SIZE="4") as base:
            async with httpx.AsyncClient(base_url=base, cookies={COOKIE: token}, timeout=30) as c:
                page = await c.get("/orgs/restart-drill/invites")
                csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
                r = await c.post("/orgs/restart-drill/invites", data={"email": "kept@example.test", "role": "member", "_csrf_token": csrf})
                assert r.status_code == 303  # committed before the stop

                async def browse() -> None:
                    while running:
                        started = time.monotonic()
                        try:
                            status: int | str = (await c.get("/orgs/restart-drill/members")).status_code
                        except httpx.HTTPError as exc:
                            status = type(exc).__name__
                        results.append((started, time.monotonic() - started, status))
                        await asyncio.sleep(0.05)

                clients = [asyncio.create_task(browse()) for _ in range(clients_n)]
                await asyncio.sleep(2)
                stopped = time.monotonic()
                await asyncio.to_thread(tdb.cluster.stop)
                await asyncio.sleep(outage)
                await asyncio.to_thread(tdb.cluster.start)
                restarted = time.monotonic()
                await asyncio.sleep(6)
                running = False
                await asyncio.gather(*clients)
                ready = (await c.get("/readyz")).json()
        log = server_log(tdb, "restart.log")
        statuses = {s for _, _, s in results}
        assert statuses <= {200, 503}, (statuses, [line for line in log.splitlines() if "Error" in line or "error" in line][:30])
        assert max(d for _, d, _ in results) < 2 + 3, "a request waited past the acquire timeout"
        assert any(s == 503 for t, _, s in results if stopped < t < restarted)
        late = [s for t, _, s in results if t > restarted + 3]
        assert late and set(late) == {200}, "the portal did not recover on its own"
        assert ready["ready"] is True
        assert "unhandled error" not in log
        assert "database unavailable" in log  # each 503 is logged for what it was
        if report := os.environ.get("SOAK_REPORT"):
            first_ok = min((t for t, _, s in results if t > restarted and s == 200), default=restarted) - restarted
            with open(report, "a") as out:
                out.write(
                    f"| PostgreSQL restart | {outage:.0f} s outage, {clients_n} clients | {len(results)} requests, "
                    f"{sum(1 for *_, s in results if s == 503)} × 503, 0 × 500 | slowest {max(d for _, d, _ in results):.2f} s | "
                    f"serving again {first_ok:.1f} s after PostgreSQL |\n"
                )
        su = await tdb.cluster.superuser_connect()
        try:
            assert await su.fetchval("SELECT count(*) FROM invite WHERE email = 'kept@example.test'") == 1
        finally:
            await su.close()
    finally:
        tdb.stop()


async def test_the_timeouts_are_the_app_roles_defaults_and_only_its(database, su):
    """Behind PgBouncer the startup parameters are dropped; `portal migrate` made the timeouts the
    app role's defaults in this database — not the database's, which would cut off migrations and
    maintenance sessions too. A database default an earlier release set is taken back."""
    import asyncpg

    from portal import devdb
    from portal.db import privileges

    async def timeouts(url: str) -> dict[str, str]:
        conn = await asyncpg.connect(url)  # no server_settings: as a pooler that ignores them connects
        try:
            return {name: await conn.fetchval(f"SHOW {name}") for name in privileges.SESSION_DEFAULTS}
        finally:
            await conn.close()

    assert await timeouts(database.app_url) == {"idle_in_transaction_session_timeout": "1min", "lock_timeout": "15s", "statement_timeout": "1min"}
    assert await timeouts(database.owner_url) == {"idle_in_transaction_session_timeout": "0", "lock_timeout": "0", "statement_timeout": "0"}
    database_wide = "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    assert not await su.fetchval(database_wide)

    # An upgrade from a release that set them with ALTER DATABASE: migrate takes exactly those back.
    await su.execute("ALTER DATABASE portal SET statement_timeout = '60s'")
    await su.execute("ALTER DATABASE portal SET lock_timeout = '15s'")
    await su.execute("ALTER DATABASE portal SET work_mem = '8MB'")  # the operator's own: kept
    try:
        await privileges.apply(database.owner_url, devdb.APP_ROLE, database.app_url)
        assert await su.fetchval(database_wide) == ["work_mem=8MB"]
        assert (await timeouts(database.owner_url))["statement_timeout"] == "0"
        assert (await timeouts(database.app_url))["statement_timeout"] == "1min"
        # The role's own defaults come first: if they can't be set (DATABASE_URL is another role),
        # the database-wide ones stay, so pooled sessions are never left without timeouts.
        await su.execute("ALTER DATABASE portal SET statement_timeout = '60s'")
        with pytest.raises(ValueError, match="not"):
            await privileges.apply(database.owner_url, devdb.APP_ROLE, database.owner_url)
        assert "statement_timeout=60s" in await su.fetchval(database_wide)
        with pytest.raises(ValueError, match="lower-case"):  # PostgreSQL would fold it unquoted, not quoted
            await privileges.apply(database.owner_url, "Portal_App", database.app_url)
    finally:
        await su.execute("ALTER DATABASE portal RESET ALL")


async def test_only_a_lost_connection_counts_as_the_database_being_down(database):
    """A 503 says "PostgreSQL is away, retry"; a client-side error of asyncpg is a bug, a 500."""
    import asyncpg

    from portal.db.engine import database_down

    conn = await asyncpg.connect(database.app_url)
    try:
        with pytest.raises(asyncpg.DataError) as bad_parameter:  # asyncpg cannot encode it: never sent
            await conn.fetchval("SELECT $1::int", "not a number")
    finally:
        await conn.close()
    assert not database_down(bad_parameter.value)
    assert not database_down(asyncpg.exceptions.InternalClientError("waiter is not done"))
    assert not database_down(asyncpg.InterfaceError("cannot perform operation: another operation is in progress"))
    assert not database_down(asyncpg.exceptions.UniqueViolationError("duplicate key"))

    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    assert database_down(lost)
    assert database_down(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))
    assert database_down(asyncpg.exceptions.TooManyConnectionsError("too many clients"))
    assert database_down(ConnectionRefusedError(111, "Connection refused"))
    assert database_down(OSError(104, "Connection reset by peer"))


async def test_asyncpg_s_own_error_on_a_closed_connection_is_the_database_being_down(app):
    """asyncpg's client errors ("connection is closed", "another operation is in progress", a
    protocol state it cannot leave) say the database is down exactly when their connection is
    gone (terminated here, as a server restart does): while the transaction is open (a handler
    inside it) and once it has left it (noted on the error)."""
    import asyncpg

    from portal.db import engine as db

    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    with pytest.raises(Exception) as raised:
        async with db.transaction() as conn:
            assert not db.database_down(busy)  # on a live connection: a programming error, a 500
            db._raw_connection(conn).terminate()
            try:
                await conn.fetchval("SELECT 1")
            except Exception as inside:
                assert db.database_down(inside) and db.database_down(busy), repr(inside)
                raise
    assert db.database_down(raised.value), repr(raised.value)
    assert not db.database_down(busy)  # the same error, with no closed connection behind it
    # The server's last word (FATAL: terminating connection) arrived between two queries and
    # asyncpg was still discarding it (protocol state 2) when the next began: before the
    # connection knows it is closed. Met by the restart test under load.
    assert db.database_down(asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"))
    assert not db.database_down(asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (15) is in progress"))


def test_make_bench_keeps_the_soak_figures_and_make_soak_adds_to_them():
    """`make bench` rewrites bench/results.md whole, but for the soak section `make soak` writes."""
    from datetime import datetime

    from bench import soak

    from portal.config import ROOT

    results = (ROOT / "bench" / "results.md").read_text()
    kept = soak.section(results)
    assert kept and "| PostgreSQL restart | 60 s outage, 16 clients |" in kept  # the figures live in results.md
    row = "| PostgreSQL restart | 60 s outage, 16 clients | 1 requests, 0 × 503, 0 × 500 | slowest 0.10 s | serving again 0.0 s after PostgreSQL |\n"
    more = soak.with_run(kept, row, datetime(2027, 1, 2, 3, 4))
    assert more.startswith(soak.START) and more.endswith(soak.END) and kept[len(soak.START):-len(soak.END)].strip() in more
    assert "### 2027-01-02 03:04 UTC" in more and more.count("| PostgreSQL restart |") == kept.count("| PostgreSQL restart |") + 1
    assert soak.with_run(None, row, datetime(2027, 1, 2, 3, 4)).startswith(f"{soak.START}\n{soak.INTRO}")
    rewritten = soak.keep("# Benchmark results\n\nfresh figures\n", results)  # as bench.run writes it
    assert rewritten.startswith("# Benchmark results\n\nfresh figures\n") and soak.section(rewritten) == kept
    assert soak.keep("# Benchmark results\n", None) == "# Benchmark results\n"
