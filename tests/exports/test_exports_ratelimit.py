"""The export rate limit holds across app instances: it lives in PostgreSQL, under a per-org lock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from portal import clock
from portal.config import get_settings
from tests.factories import Client, text_of


async def signed_in(app, user) -> Client:
    from portal.accounts import sessions

    c = Client(app)
    await c.ensure_csrf()
    c.http.cookies.set(sessions.COOKIE, await sessions.create(user.id), domain="testserver.local", path="/")
    return c


async def test_rate_limit_holds_across_two_app_instances(database, app, make_org, make_member, su):
    from portal.app import create_app

    org = await make_org()
    officer = await make_member(org, "compliance_officer")
    rate = get_settings().export_rate
    assert rate == 3
    # two independent app objects (as two processes would be) on the one database
    apps = [create_app(manage_pool=False), create_app(manage_pool=False)]
    clients = [await signed_in(apps[0], org.owner), await signed_in(apps[1], officer),
               await signed_in(apps[0], officer), await signed_in(apps[1], org.owner)]
    try:
        attempts = [clients[i % len(clients)].post(f"/orgs/{org.slug}/exports") for i in range(rate + 5)]
        responses = await asyncio.gather(*attempts)
    finally:
        for c in clients:
            await c.aclose()
    codes = sorted(r.status_code for r in responses)
    assert codes == [303] * rate + [429] * 5
    assert await su.fetchval("SELECT count(*) FROM export_job WHERE org_id = $1", org.id) == rate
    assert await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'export.requested'", org.id) == rate
    for r in responses:
        if r.status_code == 429:
            assert 3500 <= int(r.headers["retry-after"]) <= 3600
            assert "3 exports per hour" in text_of(r) and "next one in" in text_of(r)
            assert r.headers["content-security-policy"]


async def test_retry_after_counts_down_to_when_the_oldest_request_leaves_the_window(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    for _ in range(3):
        assert (await c.post(f"/orgs/{org.slug}/exports")).status_code == 303
        clock.advance(timedelta(minutes=10))
    # requests at t=0, 10, 20 min; now t=30 min: the first leaves the window in 30 minutes
    r = await c.post(f"/orgs/{org.slug}/exports")
    assert r.status_code == 429 and 1795 <= int(r.headers["retry-after"]) <= 1800
    assert "30 minutes" in text_of(r)
    page = await c.get(f"/orgs/{org.slug}/exports")
    assert "next one can be requested in 30 minutes" in text_of(page)

    # htmx: the same 429, as a message for the page's flash area
    r = await c.post(f"/orgs/{org.slug}/exports", htmx=True)
    assert r.status_code == 429 and r.headers["hx-retarget"] == "#flash" and "exports per hour" in r.text
    assert "<html" not in r.text

    clock.advance(timedelta(minutes=30, seconds=1))
    assert (await c.post(f"/orgs/{org.slug}/exports")).status_code == 303
    assert (await c.post(f"/orgs/{org.slug}/exports")).status_code == 429
    assert await su.fetchval("SELECT count(*) FROM export_job WHERE org_id = $1", org.id) == 4


async def test_the_limit_is_per_organization(client_for, make_org):
    a, b = await make_org(), await make_org()
    ca, cb = await client_for(a.owner), await client_for(b.owner)
    for _ in range(3):
        assert (await ca.post(f"/orgs/{a.slug}/exports")).status_code == 303
    assert (await ca.post(f"/orgs/{a.slug}/exports")).status_code == 429
    assert (await cb.post(f"/orgs/{b.slug}/exports")).status_code == 303
