"""Dead invites and races: no oracle between the ways an invite dies, exactly one winner among
concurrent accepts (and the member count follows), no deadlock between an accept and the owner's
revoke, expiry on the portal's clock, per-client rate limits, and a database that never holds a
token."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import asyncpg

from portal import clock
from portal.config import get_settings
from portal.mail import queue as mail_queue
from tests.concurrency import wait_until_blocked_on_lock
from tests.factories import Client, assert_member_count_exact, send_invite, text_of, without_nonces
from tests.mail_sink import link_in, outbox_messages

GARBAGE = [
    secrets.token_urlsafe(32),  # well-formed, never issued
    "A" * 43,
    "short",
    "A" * 44,
    "x" * 3000,
    "ünïcødé-тест",
    "%00%00",
    "....",
    "'; DROP TABLE invite; --",
    "<script>alert(1)<",
]


def page(r) -> tuple[int, str]:
    return r.status_code, without_nonces(r.text)


async def test_every_dead_invite_gets_the_same_page(app, outbox, make_org, make_user, make_invite, client_for, su):
    invitee = await make_user()
    stranger = await make_user()
    orgs = {name: await make_org() for name in ("expired", "revoked", "used", "superseded", "deleted")}
    tokens: dict[str, str] = {}
    tokens["expired"], _ = await make_invite(
        orgs["expired"], invitee.email, created_at=datetime.now(timezone.utc) - timedelta(days=8)
    )
    tokens["revoked"], revoked_id = await make_invite(orgs["revoked"], invitee.email)
    owner = await client_for(orgs["revoked"].owner)
    assert (await owner.post(f"/orgs/{orgs['revoked'].slug}/invites/{revoked_id}/revoke")).status_code == 303
    tokens["used"], _ = await make_invite(orgs["used"], invitee.email)
    invitee_client = await client_for(invitee)
    r = await invitee_client.post(f"/invites/{tokens['used']}/accept")
    assert r.status_code == 303
    await invitee_client.get(r.headers["location"])  # shows (and clears) the welcome message
    owner = await client_for(orgs["superseded"].owner)
    await send_invite(owner, orgs["superseded"], invitee.email)
    tokens["superseded"] = link_in(outbox_messages(outbox)[0]).rsplit("/", 1)[1]
    superseded_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", orgs["superseded"].id)
    assert (await owner.post(f"/orgs/{orgs['superseded'].slug}/invites/{superseded_id}/resend")).status_code == 303
    await mail_queue.drain()
    tokens["deleted"], _ = await make_invite(orgs["deleted"], invitee.email)
    await su.execute("DELETE FROM organization WHERE id = $1", orgs["deleted"].id)
    for i, token in enumerate(GARBAGE):
        tokens[f"garbage-{i}"] = token

    anonymous = Client(app)
    stranger_client = await client_for(stranger)  # signed in as another address
    seen: dict[str, set] = {"anonymous": set(), "invitee": set(), "stranger": set()}
    for name, token in tokens.items():
        path = f"/invites/{quote(token, safe='')}"
        r = await anonymous.get(path)
        assert r.status_code == 404, (name, r.status_code)
        assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store", name
        assert "This invite is no longer valid" in text_of(r), name
        seen["anonymous"].add(page(r))
        for who, c in (("invitee", invitee_client), ("stranger", stranger_client)):
            landing = await c.get(path)
            accept = await c.post(f"{path}/accept")
            assert landing.status_code == accept.status_code == 404, (name, who)
            seen[who] |= {page(landing), page(accept)}
    # one page per client, whatever the cause, landing or accept alike
    assert {who: len(pages) for who, pages in seen.items()} == {"anonymous": 1, "invitee": 1, "stranger": 1}


async def test_email_mismatch_on_a_live_invite_explains_but_on_a_dead_one_says_nothing_more(
    app, make_org, make_user, make_invite, client_for
):
    org = await make_org()
    invitee, stranger = await make_user(), await make_user()
    live, _ = await make_invite(org, invitee.email)
    dead, _ = await make_invite(org, "someone-else@example.test", created_at=datetime.now(timezone.utc) - timedelta(days=8))
    c = await client_for(stranger)
    r = await c.post(f"/invites/{live}/accept")
    assert r.status_code == 403 and f"This invite is for {invitee.email}" in text_of(r)
    r_dead = await c.post(f"/invites/{dead}/accept")
    r_none = await c.post(f"/invites/{secrets.token_urlsafe(32)}/accept")
    assert page(r_dead) == page(r_none) and r_dead.status_code == 404
    assert "someone-else@example.test" not in r_dead.text


async def test_ten_concurrent_accepts_make_exactly_one_membership(app, make_org, make_user, make_invite, client_for, su):
    org = await make_org()
    invitee = await make_user()
    token, invite_id = await make_invite(org, invitee.email, "billing_admin")
    c = await client_for(invitee)
    results = await asyncio.gather(*(c.post(f"/invites/{token}/accept") for _ in range(10)))
    codes = sorted(r.status_code for r in results)
    assert codes == [303] + [404] * 9
    # The same page's content for every loser (the header's org switcher may already list the org
    # for a request whose session was read after the winner committed).
    refusals = {(code, text[text.index("<main"):]) for code, text in map(page, (r for r in results if r.status_code == 404))}
    assert len(refusals) == 1 and "This invite is no longer valid" in next(iter(refusals))[1]
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND user_id = $2", org.id, invitee.id) == 1
    assert await su.fetchval("SELECT accepted_by FROM invite WHERE id = $1", invite_id) == invitee.id
    counts = dict(await su.fetch("SELECT action, count(*) FROM audit_event WHERE org_id = $1 GROUP BY action", org.id))
    assert counts == {"invite.accepted": 1, "member.joined": 1}
    await assert_member_count_exact(su, org, 2)


async def test_accepting_while_the_owner_revokes_never_deadlocks(app, database, make_org, make_user, make_invite, client_for, su):
    """Accepting counts the new member on the org row, so it takes the org row before the invite
    (org row, invite, membership), as every owner-side invite change does (org row in enter_org,
    then the invite FOR UPDATE). Taken the other way round — invite first — an accept and a
    revoke of the same invite would each hold what the other waits for."""
    org = await make_org()
    invitee = await make_user()
    token, invite_id = await make_invite(org, invitee.email)
    c = await client_for(invitee)
    owner = await asyncpg.connect(database.app_url)  # the owner's revoke, step by step
    try:
        async with owner.transaction():
            await owner.execute("SET LOCAL lock_timeout = '5s'")
            await owner.execute("SELECT set_config('app.org_id', $1, true)", str(org.id))
            await owner.execute("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", org.id)
            accept = asyncio.create_task(c.post(f"/invites/{token}/accept"))
            await wait_until_blocked_on_lock(su)  # the accept waits for the org row...
            # ...without holding the invite: the owner locks it at once and revokes
            await owner.execute("SELECT 1 FROM invite WHERE id = $1 FOR UPDATE", invite_id)
            await owner.execute("UPDATE invite SET revoked_at = now() WHERE id = $1", invite_id)
        r = await asyncio.wait_for(accept, 10)
    finally:
        await owner.close()
    assert r.status_code == 404 and "This invite is no longer valid" in r.text
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND user_id = $2", org.id, invitee.id) == 0
    await assert_member_count_exact(su, org, 1)


async def test_expiry_follows_the_clock_ttl_minus_one_second_ok_plus_one_refused(app, make_org, make_user, make_invite, client_for, su):
    ttl = get_settings().invite_ttl
    assert ttl == timedelta(days=7)
    now = clock.now()
    early, late = await make_org(), await make_org()
    invitee = await make_user()
    token_early, _ = await make_invite(early, invitee.email, created_at=now, ttl=ttl)
    token_late, _ = await make_invite(late, invitee.email, created_at=now, ttl=ttl)

    clock.advance(ttl - timedelta(seconds=1))
    c = await client_for(invitee)  # a session that starts at the moved time
    assert (await c.get(f"/invites/{token_early}")).status_code == 200
    assert (await c.post(f"/invites/{token_early}/accept")).status_code == 303

    clock.advance(timedelta(seconds=2))  # TTL + 1 s
    landing = await c.get(f"/invites/{token_late}")
    accept = await c.post(f"/invites/{token_late}/accept")
    assert landing.status_code == accept.status_code == 404
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", late.id) == 1  # the owner only
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", early.id) == 2


async def test_landing_and_accept_are_rate_limited_per_client(app, make_org, make_user, make_invite, client_for, monkeypatch):
    from portal.invites import service

    monkeypatch.setattr(service, "PUBLIC_HITS", 4)
    org = await make_org()
    invitee = await make_user()
    token, _ = await make_invite(org, invitee.email)
    hammer = await client_for(invitee)
    for _ in range(3):
        assert (await hammer.get(f"/invites/{secrets.token_urlsafe(32)}")).status_code == 404
    assert (await hammer.get(f"/invites/{token}")).status_code == 200
    for r in (await hammer.get(f"/invites/{token}"), await hammer.post(f"/invites/{token}/accept")):
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert r.headers["referrer-policy"] == "no-referrer"
    # another client is unaffected, and the invite is still good
    other = await client_for(invitee)
    assert (await other.post(f"/invites/{token}/accept")).status_code == 303
    clock.advance(service.PUBLIC_WINDOW + timedelta(seconds=1))
    assert (await hammer.get(f"/invites/{token}")).status_code == 404  # allowed again (and used by now)


async def test_the_database_never_contains_a_token(app, outbox, make_org, make_user, client_for, su):
    org = await make_org()
    invitee = await make_user()
    owner = await client_for(org.owner)
    await send_invite(owner, org, invitee.email, "compliance_officer")
    invite_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    assert (await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/resend")).status_code == 303
    await mail_queue.drain()
    links = [link_in(m) for m in outbox_messages(outbox)]
    tokens = [link.rsplit("/", 1)[1] for link in links]
    c = await client_for(invitee)
    assert (await c.get(links[1])).status_code == 200
    assert (await c.get(links[0])).status_code == 404
    assert (await c.post(f"{links[1]}/accept")).status_code == 303

    tables = [r["tablename"] for r in await su.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert "invite" in tables and len(tables) >= 8
    for token in tokens:
        for table in tables:
            hits = await su.fetchval(f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'", token)
            assert hits == 0, (table, "holds a token")
    # what is stored is the hash
    import hashlib

    stored = {r["token_hash"] for r in await su.fetch("SELECT token_hash FROM invite WHERE org_id = $1", org.id)}
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
