"""Hardening of the foundation: throttles that hold under concurrency, bodies read before any lock,
hostile URLs and cookies, lock ordering."""

from __future__ import annotations

import asyncio

import pytest

from portal.tenancy import context
from tests.factories import PASSWORD, Client, unique


async def test_parallel_wrong_passwords_are_all_counted(app, make_user):
    """The throttle check and the attempt record are one step: 20 parallel guesses from one
    client at one account evaluate at most 5 passwords."""
    user = await make_user()
    c = Client(app, ip="10.200.0.1")
    await c.ensure_csrf()
    results = await asyncio.gather(*(c.post("/login", {"email": user.email, "password": f"guess-{i}-xxxx"}) for i in range(20)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(422) <= 5 and codes.count(429) >= 15 and set(codes) <= {422, 429}
    # the right password from that client is refused too, while the window lasts
    assert (await c.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 429
    # but the account is not locked for everyone: another client still signs in
    other = Client(app, ip="10.200.0.2")
    assert (await other.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 303
    await c.aclose()
    await other.aclose()


async def test_signup_is_rate_limited_per_client(app):
    c = Client(app, ip="10.201.0.1")
    codes = []
    for i in range(22):
        c.http.cookies.delete("portal_session")
        r = await c.post("/signup", {"email": f"{unique('s')}@example.test", "name": "Sig", "password": "long-enough-pass"})
        codes.append(r.status_code)
    assert codes[:20] == [303] * 20 and codes[20:] == [429, 429]
    await c.aclose()


async def test_hostile_slugs_get_the_plain_404(client_for, make_user):
    c = await client_for(await make_user())
    for slug in ("%00ab", "a%00", "%E2%82%AC", "x" * 300, "..%2F..", "UPPER"):
        r = await c.get(f"/orgs/{slug}")
        assert r.status_code == 404, slug


async def test_non_ascii_next_falls_back_to_the_default(client, make_user):
    user = await make_user()
    r = await client.post("/login", {"email": user.email, "password": PASSWORD, "next": "/€uro\x0b"})
    assert r.status_code == 303 and r.headers["location"] == "/orgs"


async def test_oversized_org_form_is_refused_before_any_transaction(client_for, make_org, snapshot):
    org = await make_org()
    c = await client_for(org.owner)
    before = await snapshot(org.id)
    r = await c.post(f"/orgs/{org.slug}/settings", {"name": "x" * (context.MAX_BODY + 10)})
    assert r.status_code == 413
    assert "too large" in r.text
    assert await snapshot(org.id) == before


async def test_a_stalled_body_times_out_without_holding_locks(app, make_org, su, monkeypatch):
    """A client that never finishes its upload gets 408; meanwhile no transaction is open."""
    from portal.accounts import sessions

    monkeypatch.setattr(context, "BODY_TIMEOUT", 0.5)
    org = await make_org()
    token = await sessions.create(org.owner.id)
    c = Client(app)
    csrf = await c.ensure_csrf()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": f"/orgs/{org.slug}/settings", "raw_path": f"/orgs/{org.slug}/settings".encode(), "query_string": b"",
        "root_path": "", "client": ("10.9.9.9", 1), "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"100"),
            (b"cookie", f"portal_session={token}; portal_csrf={csrf}".encode()),
        ],
    }
    sent: list[dict] = []
    first = True

    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"name=slo", "more_body": True}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    open_tx = "SELECT count(*) FROM pg_stat_activity WHERE xact_start IS NOT NULL AND usename = 'portal_app'"
    baseline = await su.fetchval(open_tx)
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.sleep(0.2)
    # while the body trickles in, no transaction is open for it
    assert await su.fetchval(open_tx) == baseline
    await asyncio.wait_for(task, timeout=5)
    assert sent[0]["status"] == 408
    await c.aclose()


async def test_parallel_writes_by_one_actor_queue_instead_of_deadlocking(client_for, make_org):
    org = await make_org()
    c = await client_for(org.owner)
    results = await asyncio.gather(*(c.post(f"/orgs/{org.slug}/settings", {"name": f"Name {i}"}) for i in range(8)))
    assert [r.status_code for r in results] == [303] * 8


async def test_an_invalid_csrf_cookie_is_replaced_on_the_next_page(app):
    c = Client(app)
    c.http.cookies.set("portal_csrf", "garbage-from-an-old-key", domain="testserver.local")
    r = await c.get("/login")
    fresh = r.cookies.get("portal_csrf")
    assert fresh and fresh != "garbage-from-an-old-key"
    assert "garbage-from-an-old-key" not in r.text
    await c.aclose()


async def test_error_pages_raised_before_csrf_still_carry_a_usable_token(client_for, make_user):
    c = await client_for(await make_user())
    r = await c.get("/orgs/no-such-org-here")
    assert r.status_code == 404 and c.csrf in r.text


async def test_head_on_healthz(client):
    assert (await client.request("HEAD", "/healthz")).status_code == 200


async def test_serving_refuses_a_role_that_bypasses_rls(database):
    from portal.app import check_database_role
    from portal.db import engine as db

    await check_database_role()  # the app role is fine
    saved = db._engine
    db.bind(database.owner_url)  # the owner owns the tables
    await db.start_pool(1)
    try:
        with pytest.raises(RuntimeError, match="row-level security"):
            await check_database_role()
    finally:
        await db.close_pool()
        db._engine = saved
        db.bind(database.app_url)
        await db.start_pool(20)


async def test_a_static_name_too_long_for_the_file_system_is_a_404(app):
    """Found by the route fuzzer: the static router's lookup failed with a 500."""
    from tests.factories import Client

    c = Client(app)
    for name in ("x" * 300, "a/" * 200 + "b", "%00"):
        r = await c.get(f"/static/{name}")
        assert r.status_code == 404, (name[:20], r.status_code)
    assert (await c.get("/static/app.css")).status_code == 200
    await c.aclose()
