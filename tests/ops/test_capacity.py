"""Capacity is part of the tenant boundary (SPEC §9, SECURITY 32–34): no user, org or slow client
can stall the others. A request never waits for anything slow while it holds a pooled connection,
acquiring one has a timeout (503 + Retry-After), and quotas per principal hold across processes."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid

import httpx
import pytest

from bench import noisy
from portal import mail
from portal.db import engine as db
from tests.factories import PASSWORD_HASH, Client, unique
from tests.servers import portal_server, server_log


# -- the guard: holding a connection while waiting for something slow fails loudly -------------

async def test_a_second_pooled_connection_while_holding_one_raises(app):
    async with db.transaction():
        with pytest.raises(db.HeldConnectionError):
            async with db.engine().pool.acquire():
                pass
    async with db.connection():
        with pytest.raises(db.HeldConnectionError):
            async with db.transaction():
                pass


async def test_hashing_or_mailing_while_holding_a_connection_raises(app):
    from portal.accounts.passwords import hash_password, verify_password

    async with db.transaction():
        with pytest.raises(db.HeldConnectionError):
            await hash_password("a-long-password-1")
        with pytest.raises(db.HeldConnectionError):
            await verify_password(None, "a-long-password-1")
        with pytest.raises(db.HeldConnectionError):
            await mail.send(mail.Mail(to="x@example.test", subject="s", text="t", html="<p>t</p>", kind="test"))
    assert not db.holding()
    await verify_password(None, "a-long-password-1")  # and nothing stops them once released


async def test_the_mail_worker_talks_to_the_mail_server_holding_no_connection(app, monkeypatch):
    from portal.mail import queue as mail_queue

    seen = []

    async def probe(message, *, message_id=None):
        seen.append((message.to, db.holding()))

    monkeypatch.setattr(mail, "send", probe)
    async with db.transaction():
        await mail_queue.enqueue(mail.Mail(to="probe@example.test", subject="s", text="t", html="<p>t</p>", kind="test"))
    await mail_queue.drain()
    assert ("probe@example.test", False) in seen and all(not held for _, held in seen)


# -- exhaustion: a 503 with Retry-After, never a hang or a 500 -----------------------------------

async def test_an_exhausted_pool_answers_503_with_retry_after_then_recovers(app, make_org, client_for):
    org = await make_org()
    c = await client_for(org.owner)
    pool = db.engine().pool
    held = [await pool._pool.acquire() for _ in range(pool.get_max_size())]  # everything, behind the guard's back
    saved, pool.acquire_timeout = pool.acquire_timeout, 0.2
    try:
        r = await c.get(f"/orgs/{org.slug}")
        assert r.status_code == 503
        assert int(r.headers["Retry-After"]) >= 1
        assert "busy" in r.text.lower()
        assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    finally:
        pool.acquire_timeout = saved
        for conn in held:
            await pool._pool.release(conn)
    assert (await c.get(f"/orgs/{org.slug}")).status_code == 200


# -- finding 1: wrong-password deletions and transfers can't pin the pool ------------------------

async def test_a_burst_of_wrong_password_deletes_and_transfers_never_stalls_another_org(app, make_org, make_member, client_for):
    attacker_org = await make_org()
    target = await make_member(attacker_org)
    victim_org = await make_org()
    victim = await client_for(victim_org.owner)
    pool = db.engine().pool
    saved, pool.acquire_timeout = pool.acquire_timeout, 2.0
    burst = pool.get_max_size() * 3
    signed_in = await client_for(attacker_org.owner)
    clients = []
    for i in range(burst):  # each from its own address, as a botnet would: no throttle helps
        c = Client(app, ip=f"198.51.100.{i + 1}")
        c.http.cookies = signed_in.http.cookies
        clients.append(c)
    try:
        member_id = await _membership_id(attacker_org, target)

        async def hostile(i: int, c: Client) -> int:
            if i % 2:
                r = await c.post(f"/orgs/{attacker_org.slug}/delete", {"confirm": attacker_org.slug, "password": "wrong-password-1"})
            else:
                r = await c.post(f"/orgs/{attacker_org.slug}/transfer", {"member_id": member_id, "password": "wrong-password-1"})
            return r.status_code

        attack = [asyncio.create_task(hostile(i, c)) for i, c in enumerate(clients)]
        await asyncio.sleep(0.05)
        victim_codes = []
        while not all(t.done() for t in attack):
            victim_codes.append((await victim.get(f"/orgs/{victim_org.slug}/members")).status_code)
        codes = await asyncio.gather(*attack)
    finally:
        pool.acquire_timeout = saved
        for c in clients:
            await c.aclose()
    assert victim_codes and set(victim_codes) == {200}
    assert set(codes) <= {422, 429}, codes  # wrong password, or throttled; never a 500 or a 503
    assert (await victim.get(f"/orgs/{victim_org.slug}")).status_code == 200


async def _membership_id(org, user) -> str:
    async with db.transaction(user_id=user.id) as conn:
        return str(await conn.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id))


# -- finding 2: a download that the client stops reading holds no transaction --------------------

async def _paused_download(app, path: str, cookies: httpx.Cookies, *, inspect):
    """Drive the ASGI app as a client that stops reading after the first chunk of data; while it
    is stopped, call ``inspect()``. Returns (status, inspected)."""
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("10.77.0.1", 50000), "server": ("testserver", 80),
    }
    paused, resume = asyncio.Event(), asyncio.Event()
    status: list[int] = []
    bodies = 0

    async def receive():
        await resume.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal bodies
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body" and message.get("body"):
            bodies += 1
            if bodies == 2:  # after the first chunk read from the database
                paused.set()
                await resume.wait()

    task = asyncio.create_task(app(scope, receive, send))
    done, _ = await asyncio.wait([task, asyncio.create_task(paused.wait())], return_when=asyncio.FIRST_COMPLETED, timeout=30)
    try:
        assert paused.is_set(), f"the download of {path} ended before its second chunk (status {status})"
        return status[0], await inspect()
    finally:
        resume.set()
        await asyncio.wait_for(task, timeout=30)


@pytest.mark.parametrize("what", ["audit.csv", "access-report.csv", "export"])
async def test_a_stalled_download_holds_no_transaction(app, su, make_org, make_member, client_for, what):
    from portal.config import get_settings

    org = await make_org()
    for _ in range(3):
        await make_member(org)
    await su.execute(
        "INSERT INTO audit_event (org_id, actor_email, action) SELECT $1, 'a@example.test', 'agent.created' FROM generate_series(1, 5)",
        org.id,
    )
    path = f"/orgs/{org.slug}/{what}"
    if what == "export":
        chunks = [b"PK" + bytes(1000), bytes(1000)]
        data = b"".join(chunks)
        job = await su.fetchval(
            """INSERT INTO export_job (org_id, requested_by_email, status, progress, size_bytes, sha256, filename,
                                       finished_at, expires_at)
               VALUES ($1, 'x@example.test', 'done', 100, $2, $3, 'x.zip', now(), now() + interval '1 day') RETURNING id""",
            org.id, len(data), hashlib.sha256(data).hexdigest(),
        )
        for seq, chunk in enumerate(chunks):
            await su.execute("INSERT INTO export_chunk (org_id, job_id, seq, data) VALUES ($1, $2, $3, $4)", org.id, job, seq, chunk)
        path = f"/orgs/{org.slug}/exports/{job}/download"
    c = await client_for(org.owner)
    role = get_settings().app_db_role

    async def open_transactions() -> int:
        return await su.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'", role
        )

    status, open_tx = await _paused_download(app, path, c.http.cookies, inspect=open_transactions)
    assert status == 200
    assert open_tx == 0


# -- the invites page and its row poll never wait for the mail server ----------------------------

async def test_invite_pages_answer_while_the_mail_is_still_being_sent(app, make_org, client_for, monkeypatch):
    from portal.mail import queue as mail_queue

    release = asyncio.Event()

    async def slow_smtp(message, *, message_id=None):  # a mail server that takes as long as we like
        await release.wait()

    monkeypatch.setattr(mail, "send", slow_smtp)
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.post(f"/orgs/{org.slug}/invites", {"email": f"{unique('new')}@example.test", "role": "member"})
    assert r.status_code == 303
    delivering = asyncio.create_task(mail_queue.drain())  # the worker, stuck talking to the mail server
    try:
        page = await asyncio.wait_for(c.get(f"/orgs/{org.slug}/invites"), timeout=2.0)
        assert "Sending" in page.text
        invite_id = re.search(r'id="invite-([0-9a-f-]{36})"', page.text).group(1)
        row = await asyncio.wait_for(c.get(f"/orgs/{org.slug}/invites/{invite_id}", headers={"HX-Request": "true"}), timeout=2.0)
        assert row.status_code == 200 and "Sending" in row.text
    finally:
        release.set()
        await delivering


# -- quotas per principal ------------------------------------------------------------------------

async def test_org_creations_per_account_are_limited(app, su, make_user, client_for):
    from portal import config

    user = await make_user()
    c = await client_for(user)
    limit = config.get_settings().org_create_rate
    codes = [(await c.post("/orgs", {"name": f"Org {i}", "slug": unique("quota")})).status_code for i in range(limit + 2)]
    assert codes == [303] * limit + [429, 429]
    r = await c.post("/orgs", {"name": "One more", "slug": unique("quota")})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3600
    owned = await su.fetchval("SELECT count(*) FROM membership WHERE user_id = $1 AND role = 'owner'", user.id)
    assert owned == limit


async def test_a_refused_org_creation_costs_no_quota(app, su, make_user, client_for):
    user = await make_user()
    c = await client_for(user)
    taken = unique("taken")
    assert (await c.post("/orgs", {"name": "First", "slug": taken})).status_code == 303
    for _ in range(15):  # invalid or taken: refused, not counted
        assert (await c.post("/orgs", {"name": "Again", "slug": taken})).status_code == 422
    assert (await c.post("/orgs", {"name": "Second", "slug": unique("fine")})).status_code == 303


async def test_invites_per_account_are_limited_across_all_its_orgs(app, su, make_org, client_for):
    from portal.config import get_settings
    from portal.mail import queue as mail_queue

    first = await make_org()
    limit = get_settings().invite_rate
    orgs = [first] + [await make_org(owner=first.owner) for _ in range(limit // 10 + 1)]
    await su.execute("UPDATE billing_settings SET seat_limit = 1000 WHERE org_id = ANY($1::uuid[])", [o.id for o in orgs])
    c = await client_for(first.owner)
    codes = []
    for i in range(limit + 3):
        org = orgs[i % len(orgs)]  # never more than the per-org hourly limit in one org
        r = await c.post(f"/orgs/{org.slug}/invites", {"email": f"{unique('spam')}@example.test", "role": "member"})
        codes.append(r.status_code)
    await mail_queue.drain()
    assert codes.count(303) == limit and codes[limit:] == [429, 429, 429]
    sent = await su.fetchval("SELECT count(*) FROM invite WHERE invited_by = $1", first.owner.id)
    assert sent == limit


def _csrf_of(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def test_quotas_hold_across_two_processes(database, su, make_user):
    """Org creations and invites per account, sign-ups per client: two `portal serve` processes
    on one database share every quota (SECURITY 34)."""
    from portal.accounts.sessions import COOKIE, token_hash

    quotas = {"ORG_CREATE_RATE": "3", "INVITE_RATE": "4", "SIGNUP_RATE": "3"}
    user = await make_user()
    token = uuid.uuid4().hex + uuid.uuid4().hex
    await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), user.id)
    with portal_server(database, "quota-a.log", **quotas) as a, portal_server(database, "quota-b.log", **quotas) as b:
        clients = [httpx.AsyncClient(base_url=u, cookies={COOKIE: token}) for u in (a, b)]
        try:
            codes, slugs = [], []
            for i in range(6):
                c = clients[i % 2]
                slug = unique("twoproc")
                form = {"name": f"Two {i}", "slug": slug, "_csrf_token": _csrf_of((await c.get("/orgs")).text)}
                r = await c.post("/orgs", data=form)
                codes.append(r.status_code)
                if r.status_code == 303:
                    slugs.append(slug)
            assert sorted(codes) == [303] * 3 + [429] * 3
            assert all(int(r) > 0 for r in [r.headers.get("Retry-After", "1")])
            await su.execute("UPDATE billing_settings SET seat_limit = 100 WHERE org_id IN (SELECT id FROM organization WHERE slug = ANY($1))", slugs)
            invite_codes = []
            for i in range(7):
                c, slug = clients[i % 2], slugs[i % len(slugs)]
                form = {"email": f"{unique('x')}@example.test", "role": "member"}
                form["_csrf_token"] = _csrf_of((await c.get(f"/orgs/{slug}/invites")).text)
                invite_codes.append((await c.post(f"/orgs/{slug}/invites", data=form)).status_code)
            assert sorted(invite_codes) == [303] * 4 + [429] * 3
            assert await su.fetchval("SELECT count(*) FROM invite WHERE invited_by = $1", user.id) == 4
        finally:
            for c in clients:
                await c.aclose()
        # Sign-ups per client address: both processes see the same (forwarded) client.
        prefix = unique("signup")
        signup_codes = []
        for i in range(5):
            async with httpx.AsyncClient(base_url=(a, b)[i % 2], headers={"X-Forwarded-For": "192.0.2.77"}) as anon:
                csrf = _csrf_of((await anon.get("/signup")).text)
                r = await anon.post(
                    "/signup", data={"email": f"{prefix}-{i}@example.test", "name": "Quota", "password": "a-long-password-1", "_csrf_token": csrf}
                )
                signup_codes.append(r.status_code)
        assert signup_codes.count(429) == 2, signup_codes
        assert await su.fetchval("SELECT count(*) FROM app_user WHERE email LIKE $1", f"{prefix}-%") == 3


# -- the noisy neighbour (SECURITY 32) ------------------------------------------------------------

async def test_noisy_neighbour_cannot_stall_another_org(database, su):
    """One account fires (pool size × 3) concurrent hostile requests at its own org — wrong-password
    deletes and transfers from many addresses, downloads it stops reading, invite-list polls —
    while a victim in another org browses: every victim request succeeds within the acquire
    timeout, and no attacker request is a 500."""
    pool, timeout = 5, 5.0
    scene = await noisy.stage(su, PASSWORD_HASH)
    env = {"DB_POOL_SIZE": str(pool), "DB_ACQUIRE_TIMEOUT": f"{timeout:g}s", "PER_PRINCIPAL_CONCURRENCY": "8"}
    with portal_server(database, "noisy.log", **env) as base:
        tally = await noisy.attack(base, scene, seconds=4.0, hostile=pool * 3)
    result = noisy.summary(tally)
    print("noisy neighbour:", result)
    assert result["victim_requests"] >= 4, result
    assert result["victim_status"] == {200: result["victim_requests"]}, result
    assert result["victim_max_ms"] < timeout * 1000, result
    assert tally.slow_readers_started >= 3, result
    assert set(tally.attacker) <= {200, 303, 422, 429, 503}, result
    assert sum(tally.attacker.values()) >= pool * 3, result
    log = server_log(database, "noisy.log")
    assert "Traceback" not in log and "HeldConnectionError" not in log, log[-3000:]


# -- a fair share of each worker per principal ----------------------------------------------------

async def test_one_account_gets_a_fair_share_of_the_worker_and_no_more(app, su, make_org, client_for, monkeypatch):
    import dataclasses

    from portal import config

    monkeypatch.setattr(config, "_settings", dataclasses.replace(config.get_settings(), per_principal_concurrency=2))
    greedy_org, other_org = await make_org(), await make_org()
    await su.execute(
        "INSERT INTO audit_event (org_id, actor_email, action) SELECT $1, 'a@example.test', 'agent.created' FROM generate_series(1, 5)",
        greedy_org.id,
    )
    greedy, other = await client_for(greedy_org.owner), await client_for(other_org.owner)
    path = f"/orgs/{greedy_org.slug}/audit.csv"

    async def third_request():  # two downloads of the greedy account are in flight, stalled
        r = await greedy.get(f"/orgs/{greedy_org.slug}")
        o = await other.get(f"/orgs/{other_org.slug}")
        return r, o

    async def inspect_inner():
        return await third_request()

    async def inspect_outer():
        return await _paused_download(app, path, greedy.http.cookies, inspect=inspect_inner)

    _, (_, (refused, unaffected)) = await _paused_download(app, path, greedy.http.cookies, inspect=inspect_outer)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "at once" in refused.text
    assert unaffected.status_code == 200
    assert (await greedy.get(f"/orgs/{greedy_org.slug}")).status_code == 200  # once they finish


async def test_a_forged_form_costs_no_password_hash_and_no_attempt(app, su, make_org, make_member, client_for):
    """The password is checked before the action's transaction, but never before the CSRF token:
    a forged delete or transfer must not burn the owner's sign-in budget."""
    org = await make_org()
    member = await make_member(org)
    c = await client_for(org.owner)
    member_id = await _membership_id(org, member)
    for path, form in (("delete", {"confirm": org.slug}), ("transfer", {"member_id": member_id})):
        r = await c.post(f"/orgs/{org.slug}/{path}", {**form, "password": "wrong-password-1"}, csrf=False)
        assert r.status_code == 403
        r = await c.post(f"/orgs/{org.slug}/{path}", {**form, "password": "wrong-password-1", "_csrf_token": "forged"}, csrf=False)
        assert r.status_code == 403
    assert await su.fetchval("SELECT count(*) FROM login_attempt WHERE email = $1", org.owner.email) == 0
    r = await c.post(f"/orgs/{org.slug}/delete", {"confirm": org.slug, "password": "wrong-password-1"})
    assert r.status_code == 422  # with the token, the attempt is checked and counted
    assert await su.fetchval("SELECT count(*) FROM login_attempt WHERE email = $1", org.owner.email) == 1


async def test_one_client_network_gets_a_share_before_any_session_lookup(app, su, make_org, client_for, monkeypatch):
    import dataclasses

    from portal import config

    monkeypatch.setattr(config, "_settings", dataclasses.replace(config.get_settings(), per_client_concurrency=2))
    org = await make_org()
    await su.execute(
        "INSERT INTO audit_event (org_id, actor_email, action) SELECT $1, 'a@example.test', 'agent.created' FROM generate_series(1, 5)",
        org.id,
    )
    owner = await client_for(org.owner)
    path = f"/orgs/{org.slug}/audit.csv"
    same_network, elsewhere = Client(app, ip="10.77.0.1"), Client(app, ip="10.78.0.1")  # _paused_download's address

    async def inspect_inner():
        return (await same_network.get("/login")), (await elsewhere.get("/login"))

    async def inspect_outer():
        return await _paused_download(app, path, owner.http.cookies, inspect=inspect_inner)

    try:
        _, (_, (refused, unaffected)) = await _paused_download(app, path, owner.http.cookies, inspect=inspect_outer)
    finally:
        await same_network.aclose()
        await elsewhere.aclose()
    assert refused.status_code == 429 and "your network" in refused.text
    assert unaffected.status_code == 200
