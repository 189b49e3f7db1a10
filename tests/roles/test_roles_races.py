"""SECURITY 44, race-freedom: editing a custom role mid-flight is like a role change (SECURITY 11).
An action that checked a permission commits before the edit lands, or waits for it and is
refused under the new permissions; from the edit on, every holder's very next request sees it.

The holder ("People lead": members.manage + resources.manage) changes a plain member's role
while the role loses members.manage, in each order, with the edit made by the owner's own request
and by another transaction (so the role row's lock, not just the org's, is what orders them)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.concurrency import wait_until_blocked_on_lock
from tests.factories import add_role, events, give_role

LEAD = ["members.manage", "org.leave", "resources.manage"]


@pytest.fixture
async def lead(make_world, client_for, su):
    w = await make_world()
    w.lead_role = await add_role(su, w.org.id, "People lead", tuple(LEAD))
    await give_role(su, w.org.id, w.memberships["member"], w.lead_role)
    w.lead = await client_for(w.users["member"])
    w.owner = await client_for(w.users["owner"])
    return w


def change(w, role: str):
    """The lead gives the plain ``target`` member ``role`` (within the lead's permissions)."""
    return w.lead.post(f"/orgs/{w.org.slug}/members/{w.target}/role", {"role": role})


async def target_role(su, w):
    return await su.fetchval("SELECT role FROM membership WHERE id = $1", w.target)


async def test_action_paused_after_its_check_commits_before_the_edit(lead, su, gate):
    w = lead
    builder = await add_role(su, w.org.id, "Builder", ("resources.manage",))
    reached, release = gate.hold("role.locked")
    action = asyncio.create_task(change(w, str(builder)))
    await asyncio.wait_for(reached.wait(), 5)
    edit = asyncio.create_task(
        w.owner.post(f"/orgs/{w.org.slug}/roles/{w.lead_role}/edit", {"name": "People lead", "permissions": ["resources.manage"]})
    )
    await wait_until_blocked_on_lock(su)
    await asyncio.sleep(0.05)
    assert not edit.done()
    release.set()
    r_action, r_edit = await asyncio.wait_for(asyncio.gather(action, edit), 10)
    assert (r_action.status_code, r_edit.status_code) == (303, 303)
    order = [e["action"] for e in await events(su, w.org) if e["action"] in ("member.role_changed", "role.updated")]
    assert order == ["member.role_changed", "role.updated"], order
    assert await su.fetchval("SELECT custom_role_id FROM membership WHERE id = $1", w.target) == builder
    r = await change(w, "member")  # the very next request: no members.manage any more
    assert r.status_code == 403


async def test_an_edit_by_another_transaction_waits_for_the_paused_action(database, lead, su, gate):
    """The role row's FOR SHARE (taken with the membership by enter_org) holds back an edit that
    does not go through the org row at all."""
    editor = await database.cluster.superuser_connect()
    try:
        builder = await add_role(su, w_id := lead.org.id, "Builder", ("resources.manage",))
        reached, release = gate.hold("role.locked")
        action = asyncio.create_task(change(lead, str(builder)))
        await asyncio.wait_for(reached.wait(), 5)

        async def edit():
            await editor.execute("UPDATE org_role SET permissions = '{resources.manage}' WHERE org_id = $1 AND id = $2", w_id, lead.lead_role)
            return asyncio.get_running_loop().time()

        edited = asyncio.create_task(edit())
        await asyncio.sleep(0.3)
        assert not edited.done()  # blocked by the action's FOR SHARE on the role row
        released_at = asyncio.get_running_loop().time()
        release.set()
        r = await asyncio.wait_for(action, 10)
        committed_at = await asyncio.wait_for(edited, 10)
        assert r.status_code == 303
        assert committed_at >= released_at
    finally:
        await editor.close()


async def test_action_arriving_during_an_edit_waits_and_is_refused(database, lead, su, snapshot):
    editor = await database.cluster.superuser_connect()
    try:
        tx = editor.transaction()
        await tx.start()
        await editor.execute("UPDATE org_role SET permissions = '{resources.manage}' WHERE id = $1", lead.lead_role)
        before = await snapshot(lead.org.id)
        action = asyncio.create_task(change(lead, "member"))
        await wait_until_blocked_on_lock(su)  # enter_org's FOR SHARE on the role waits for the edit
        assert not action.done()
        await tx.commit()
        r = await asyncio.wait_for(action, 10)
        assert r.status_code == 403, r.status_code
        after = await snapshot(lead.org.id)
        assert {k: v for k, v in after.items() if k != "org_role"} == {k: v for k, v in before.items() if k != "org_role"}
        assert await target_role(su, lead) == "member"
    finally:
        await editor.close()


async def test_edits_and_grants_storm_never_leave_a_grant_beyond_the_granter(lead, su, client_for):
    """The owner toggles the lead's members.manage while the lead keeps granting: in the audit
    trail's order, every grant follows an edit that left members.manage in place."""
    w = lead
    builder = await add_role(su, w.org.id, "Builder", ("resources.manage",))
    toggles = [LEAD, ["org.leave", "resources.manage"]] * 6

    async def owner_edits():
        for perms in toggles:
            await w.owner.post(f"/orgs/{w.org.slug}/roles/{w.lead_role}/edit", {"name": "People lead", "permissions": perms})

    async def lead_grants():
        codes = []
        for i in range(24):
            r = await change(w, str(builder) if i % 2 else "member")
            codes.append(r.status_code)
        return codes

    _, codes = await asyncio.wait_for(asyncio.gather(owner_edits(), lead_grants()), 60)
    assert set(codes) <= {303, 403, 409}, codes
    # Replay the trail: a grant only ever follows an edit that left members.manage in place.
    holds = True
    for e in await events(su, w.org):
        if e["action"] == "role.updated":
            holds = "members.manage" in json.loads(e["after"]).get("permissions", LEAD)
        elif e["action"] == "member.role_changed":
            assert holds, "a grant landed while the granter lacked members.manage"
