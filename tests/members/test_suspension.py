"""Suspended memberships (SPEC §12): what an identity provider's ``active=false`` will do. The
member keeps their membership and role and can do nothing in the org, on the very next request;
the org leaves their switcher; their tokens stop; the owner can never be suspended; the members
page says so; reactivating restores everything."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.concurrency import wait_until_blocked_on_lock
from tests.factories import Client, add_api_token, bearer, text_of


async def suspend(su, org_id, user_id, on: bool = True) -> None:
    await su.execute(
        "UPDATE membership SET suspended_at = CASE WHEN $3 THEN now() END, scim_managed = true WHERE org_id = $1 AND user_id = $2",
        org_id, user_id, on,
    )


async def test_a_suspended_member_can_do_nothing_until_reactivated(make_world, client_for, su, app):
    w = await make_world()
    member = w.users["member"]
    c = await client_for(member)
    assert (await c.get(f"/orgs/{w.org.slug}/agents")).status_code == 200
    _, token = await add_api_token(su, w.org, agent_id=w.agent_used, created_by=member)  # an agent's token they issued
    await suspend(su, w.org.id, member.id)
    for path in ("", "/agents", "/members"):
        assert (await c.get(f"/orgs/{w.org.slug}{path}")).status_code == 404, path  # as if not a member
    assert (await c.post(f"/orgs/{w.org.slug}/agents", {"name": "Nope", "model": "gpt-4.1"})).status_code == 404
    assert w.org.slug not in (await c.get("/orgs")).text  # the switcher and the org list leave it out
    program = Client(app)
    assert (await program.http.get(f"/api/v1/orgs/{w.org.slug}/agent", headers=bearer(token))).status_code == 401  # its creator is suspended

    owner = await client_for(w.users["owner"])
    page = text_of(await owner.get(f"/orgs/{w.org.slug}/members"))
    assert "Suspended" in page and "managed by SCIM" in page
    await suspend(su, w.org.id, member.id, on=False)
    assert (await c.get(f"/orgs/{w.org.slug}/agents")).status_code == 200
    assert (await program.http.get(f"/api/v1/orgs/{w.org.slug}/agent", headers=bearer(token))).status_code == 200
    await program.aclose()


async def test_the_owner_can_never_be_suspended(make_world, su):
    w = await make_world()
    with pytest.raises(asyncpg.CheckViolationError):
        await suspend(su, w.org.id, w.org.owner.id)


async def test_ownership_is_never_transferred_to_a_suspended_member(make_world, client_for, su):
    from tests.factories import PASSWORD

    w = await make_world()
    await suspend(su, w.org.id, w.users["member"].id)
    owner = await client_for(w.users["owner"])
    target = w.memberships["member"]
    assert str(target) not in (await owner.get(f"/orgs/{w.org.slug}/transfer")).text  # not offered
    r = await owner.post(f"/orgs/{w.org.slug}/transfer", {"member_id": str(target), "password": PASSWORD})
    assert r.status_code in (409, 422) and "suspended" in r.text
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", target) == "member"


async def test_a_suspension_waits_for_an_action_in_flight_or_refuses_it(make_world, client_for, su, database):
    """The suspension takes the membership row; an unsafe request arriving meanwhile waits for it,
    then is refused (like a removal), and writes nothing."""
    w = await make_world()
    c = await client_for(w.users["member"])
    admin = await database.cluster.superuser_connect()
    try:
        tx = admin.transaction()
        await tx.start()
        await admin.execute("UPDATE membership SET suspended_at = now() WHERE org_id = $1 AND user_id = $2", w.org.id, w.users["member"].id)
        call = asyncio.create_task(c.post(f"/orgs/{w.org.slug}/agents", {"name": "Raced", "model": "gpt-4.1"}))
        await wait_until_blocked_on_lock(su)
        await tx.commit()
        r = await call
    finally:
        await admin.close()
    assert r.status_code == 404
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1 AND name = 'Raced'", w.org.id) == 0
