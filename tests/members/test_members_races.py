"""Races (SECURITY 11, 13, 14): stale roles, one owner under concurrent storms, atomic transfer.

Requests run concurrently in the test's event loop over separate clients (each its own session
and pooled connection). ``gate`` holds a request at a named point of the members service, between
its checks and its writes, so the interleavings are exact rather than hoped for.
"""

from __future__ import annotations

import asyncio
import html
import random

import asyncpg
import pytest

from tests.concurrency import wait_until_blocked_on_lock
from tests.factories import (
    PASSWORD,
    assert_member_count_exact,
    events,
    membership_id,
    owner_count,
    roles_of,
    text_of as _text_of,
)

MUTATIONS = ("member.role_changed", "member.removed", "member.left", "org.ownership_transferred")
ALLOWED = {303, 403, 404, 409}


def text_of(r) -> str:
    return html.unescape(_text_of(r))


def ids_of(crew) -> dict:
    return {user.id: crew.memberships[role] for role, user in crew.users.items()}


async def mutation_actions(su, org) -> list[str]:
    """The actions of the org's membership-changing audit events, oldest first."""
    rows = await su.fetch(
        "SELECT action FROM audit_event WHERE org_id = $1 AND action = ANY($2::text[]) ORDER BY created_at, id",
        org.id,
        list(MUTATIONS),
    )
    return [row["action"] for row in rows]


# -- SECURITY 11: stale role ---------------------------------------------------------------------
async def test_privileged_action_paused_after_its_check_commits_before_the_demotion(crew, client_for, su, gate):
    """The owner's role change holds its share lock; the owner's own transfer (which demotes them)
    waits for it, so the role change lands first and the demotion after."""
    tab1, tab2 = await client_for(crew.org.owner), await client_for(crew.org.owner)
    reached, release = gate.hold("role.locked")
    change = asyncio.create_task(
        tab1.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['member']}/role", {"role": "billing_admin"})
    )
    await asyncio.wait_for(reached.wait(), 5)
    demotion = asyncio.create_task(
        tab2.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["compliance_officer"]), "password": PASSWORD})
    )
    await wait_until_blocked_on_lock(su)
    await asyncio.sleep(0.05)
    assert not demotion.done()  # the demotion waits for the action that checked the role
    release.set()
    r_change, r_demotion = await asyncio.wait_for(asyncio.gather(change, demotion), 10)
    codes = (r_change.status_code, r_demotion.status_code)
    assert codes == (303, 303), codes
    actions = await mutation_actions(su, crew.org)
    assert actions == ["member.role_changed", "org.ownership_transferred"], actions
    roles = await roles_of(su, crew.org)
    member_role, owner_role = roles[crew.memberships["member"]], roles[crew.memberships["owner"]]
    assert member_role == "billing_admin", member_role
    assert owner_role == "member", owner_role
    # and from now on the demoted owner is refused
    r = await tab1.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['member']}/role", {"role": "member"})
    assert r.status_code == 403, r.status_code


async def test_privileged_action_arriving_during_a_demotion_waits_and_is_refused(crew, client_for, su, gate):
    """The transfer has demoted the owner but not committed; the owner's role change (another tab)
    waits on the share lock, sees the demotion, and ends in 403 with nothing written."""
    tab1, tab2 = await client_for(crew.org.owner), await client_for(crew.org.owner)
    reached, release = gate.hold("transfer.demoted")
    demotion = asyncio.create_task(
        tab2.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["compliance_officer"]), "password": PASSWORD})
    )
    await asyncio.wait_for(reached.wait(), 5)
    change = asyncio.create_task(tab1.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['member']}/remove"))
    await wait_until_blocked_on_lock(su)
    assert not change.done()
    release.set()
    r_demotion, r_change = await asyncio.wait_for(asyncio.gather(demotion, change), 10)
    assert r_demotion.status_code == 303, r_demotion.status_code
    assert r_change.status_code == 403, r_change.status_code
    assert "doesn't allow" in text_of(r_change)
    roles = await roles_of(su, crew.org)
    assert crew.memberships["member"] in roles, roles
    actions = await mutation_actions(su, crew.org)
    assert actions == ["org.ownership_transferred"], actions


async def test_demotion_by_another_transaction_never_lands_before_a_paused_action(database, crew, client_for, su, gate):
    """The same with a demotion from outside the app: it cannot commit while the action is paused
    between its check and its write."""
    demoter = await database.cluster.superuser_connect()
    try:
        c = await client_for(crew.org.owner)
        reached, release = gate.hold("remove.locked")
        action = asyncio.create_task(c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['billing_admin']}/remove"))
        await asyncio.wait_for(reached.wait(), 5)

        async def demote():
            async with demoter.transaction():
                await demoter.execute("UPDATE membership SET role = 'member' WHERE id = $1", crew.memberships["owner"])
                await demoter.execute("UPDATE membership SET role = 'owner' WHERE id = $1", crew.memberships["member"])
            return asyncio.get_running_loop().time()

        demotion = asyncio.create_task(demote())
        await asyncio.sleep(0.3)
        assert not demotion.done()  # blocked by the action's FOR SHARE
        released_at = asyncio.get_running_loop().time()
        release.set()
        r = await asyncio.wait_for(action, 10)
        committed_at = await asyncio.wait_for(demotion, 10)
        assert r.status_code == 303, r.status_code
        assert committed_at >= released_at, (committed_at, released_at)
        roles = await roles_of(su, crew.org)
        assert crew.memberships["billing_admin"] not in roles, roles
        owners = await owner_count(su, crew.org)
        assert owners == 1, owners
    finally:
        await demoter.close()


async def test_action_after_a_committed_demotion_is_refused(database, crew, client_for, su):
    demoter = await database.cluster.superuser_connect()
    try:
        c = await client_for(crew.org.owner)
        tx = demoter.transaction()
        await tx.start()
        await demoter.execute("UPDATE membership SET role = 'member' WHERE id = $1", crew.memberships["owner"])
        await demoter.execute("UPDATE membership SET role = 'owner' WHERE id = $1", crew.memberships["member"])
        action = asyncio.create_task(
            c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['billing_admin']}/role", {"role": "member"})
        )
        await wait_until_blocked_on_lock(su)  # the org middleware's FOR SHARE waits for the demotion
        await tx.commit()
        r = await asyncio.wait_for(action, 10)
        assert r.status_code == 403, r.status_code
        roles = await roles_of(su, crew.org)
        assert roles[crew.memberships["billing_admin"]] == "billing_admin", roles
        actions = await mutation_actions(su, crew.org)
        assert actions == [], actions
    finally:
        await demoter.close()


@pytest.mark.parametrize("mode,stops_demotion", [("FOR KEY SHARE", False), ("FOR SHARE", True)])
async def test_only_for_share_stops_a_concurrent_demotion(database, crew, su, mode, stops_demotion):
    """Raw connections as the app role. The action reads its actor's role with ``mode``; a
    demotion runs meanwhile. FOR KEY SHARE lets the demotion commit while the action still acts
    on the old role (the stale-role bug); FOR SHARE makes the demotion wait."""
    action = await asyncpg.connect(database.app_url)
    demoter = await asyncpg.connect(database.app_url)
    actor = crew.memberships["billing_admin"]
    try:
        tx = action.transaction()
        await tx.start()
        await action.execute("SELECT set_config('app.org_id', $1, true)", str(crew.org.id))
        role = await action.fetchval(f"SELECT role FROM membership WHERE id = $1 {mode}", actor)
        assert role == "billing_admin", role

        async def demote() -> None:
            async with demoter.transaction():
                await demoter.execute("SELECT set_config('app.org_id', $1, true)", str(crew.org.id))
                await demoter.execute("SET LOCAL lock_timeout = '300ms'")
                await demoter.execute("UPDATE membership SET role = 'member' WHERE id = $1", actor)

        if stops_demotion:
            with pytest.raises(asyncpg.LockNotAvailableError):
                await demote()
            role = await su.fetchval("SELECT role FROM membership WHERE id = $1", actor)
            assert role == "billing_admin", role
        else:
            await demote()  # commits at once
            role = await su.fetchval("SELECT role FROM membership WHERE id = $1", actor)
            assert role == "member", role
            # ... and the action, still holding its "billing_admin" check, writes after the demotion.
            await action.execute("UPDATE billing_settings SET plan = 'team' WHERE org_id = $1", crew.org.id)
        await tx.rollback()
    finally:
        await action.close()
        await demoter.close()


# -- SECURITY 14: atomic transfer ------------------------------------------------------------------
async def test_transfer_failing_between_its_two_updates_rolls_both_back(crew, client_for, su, gate, snapshot):
    c = await client_for(crew.org.owner)
    before = await snapshot(crew.org.id)
    gate.fail("transfer.demoted", RuntimeError("injected failure between demotion and promotion"))
    r = await c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    assert r.status_code == 500, r.status_code
    assert "injected" not in r.text
    after = await snapshot(crew.org.id)
    assert after == before, "the failed transfer changed the org's data"
    roles = await roles_of(su, crew.org)
    owner_role, member_role = roles[crew.memberships["owner"]], roles[crew.memberships["member"]]
    assert owner_role == "owner", owner_role
    assert member_role == "member", member_role
    transfers = await events(su, crew.org, "org.ownership_transferred")
    assert transfers == [], transfers
    # and the org still works normally
    r = await c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    assert r.status_code == 303, r.status_code
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners


# -- SECURITY 13: one owner whatever the interleaving -----------------------------------------------
async def test_two_transfers_by_the_owner_one_wins_the_other_is_refused_clearly(crew, client_for, su, gate):
    """Two tabs of the owner transfer to different members at once. Whether the writes of one org
    queue up (the loser then sees it is no longer the owner: 403) or meet in a lock cycle that
    PostgreSQL breaks (409), exactly one transfer happens and the other says why."""
    tab1, tab2 = await client_for(crew.org.owner), await client_for(crew.org.owner)
    reached, release = gate.hold("transfer.org_locked")
    first = asyncio.create_task(
        tab1.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    )
    await asyncio.wait_for(reached.wait(), 5)
    second = asyncio.create_task(
        tab2.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["billing_admin"]), "password": PASSWORD})
    )
    await wait_until_blocked_on_lock(su)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(first, second), 15)
    codes = sorted(r.status_code for r in results)
    assert codes in ([303, 403], [303, 409]), codes
    loser = next(r for r in results if r.status_code != 303)
    loser_text = text_of(loser)
    if loser.status_code == 409:
        assert "at the same moment" in loser_text, loser_text
        assert "nothing was changed" in loser_text, loser_text
    else:
        assert "doesn't allow" in loser_text, loser_text
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners
    transfers = await events(su, crew.org, "org.ownership_transferred")
    assert len(transfers) == 1, len(transfers)


async def test_a_lock_cycle_ends_in_a_clear_409_with_nothing_written(database, crew, client_for, su, gate, snapshot):
    """Force a real deadlock with the transfer as PostgreSQL's victim: another transaction holds
    the owner's membership FOR SHARE and waits for the org row the transfer holds; the transfer
    then asks for the owner's membership FOR UPDATE."""
    other = await database.cluster.superuser_connect()
    try:
        await other.execute("SET deadlock_timeout = '20s'")  # so the app's backend detects the cycle
        c = await client_for(crew.org.owner)
        before = await snapshot(crew.org.id)
        reached, release = gate.hold("transfer.org_locked")
        transfer = asyncio.create_task(
            c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
        )
        await asyncio.wait_for(reached.wait(), 5)
        tx = other.transaction()
        await tx.start()
        await other.execute("SELECT 1 FROM membership WHERE id = $1 FOR SHARE", crew.memberships["owner"])
        waiting = asyncio.create_task(other.execute("SELECT 1 FROM organization WHERE id = $1 FOR UPDATE", crew.org.id))
        await wait_until_blocked_on_lock(su, usename=None)
        release.set()
        r = await asyncio.wait_for(transfer, 15)
        assert r.status_code == 409, r.status_code
        text = text_of(r)
        assert "at the same moment" in text, text
        assert "nothing was changed" in text, text
        await asyncio.wait_for(waiting, 5)  # the victim's locks are gone
        await tx.rollback()
        after = await snapshot(crew.org.id)
        assert after == before, "the deadlocked transfer changed the org's data"
        owners = await owner_count(su, crew.org)
        assert owners == 1, owners
    finally:
        await other.close()


async def test_a_unique_violation_ends_in_a_clear_409_with_nothing_written(crew, client_for, su, gate, snapshot):
    """Inject a second owner into the transfer's own transaction right after the demotion: the
    one-owner index refuses the promotion, and the request ends in a 409, not a 500."""
    from portal.db import engine as db

    async def second_owner(name: str) -> None:
        if name == "transfer.demoted":
            await db.current_connection().execute(
                "UPDATE membership SET role = 'owner' WHERE id = $1", crew.memberships["compliance_officer"]
            )

    gate.also = second_owner
    c = await client_for(crew.org.owner)
    before = await snapshot(crew.org.id)
    r = await c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    assert r.status_code == 409, r.status_code
    assert "nothing was changed" in text_of(r)
    after = await snapshot(crew.org.id)
    assert after == before, "the refused transfer changed the org's data"
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners


async def test_owner_role_change_during_a_transfer_never_deadlocks(crew, client_for, su, gate):
    """The transfer holds the org row; the owner's role change from another tab either goes
    through while the transfer waits (its audit event's foreign-key check takes FOR KEY SHARE on
    the org row, which FOR NO KEY UPDATE lets through; FOR UPDATE would deadlock the two), or
    queues behind the transfer and is then refused because its actor is no longer the owner.
    Never a 409 or a 500."""
    tab1, tab2 = await client_for(crew.org.owner), await client_for(crew.org.owner)
    reached, release = gate.hold("transfer.org_locked")
    transfer = asyncio.create_task(
        tab1.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    )
    await asyncio.wait_for(reached.wait(), 5)
    change = asyncio.create_task(
        tab2.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['billing_admin']}/role", {"role": "compliance_officer"})
    )
    done, _ = await asyncio.wait({change}, timeout=1.0)
    release.set()
    r_transfer, r_change = await asyncio.wait_for(asyncio.gather(transfer, change), 15)
    assert r_transfer.status_code == 303, r_transfer.status_code
    actions = await mutation_actions(su, crew.org)
    if done:  # went through during the transfer
        assert r_change.status_code == 303, r_change.status_code
        assert actions == ["member.role_changed", "org.ownership_transferred"], actions
    else:  # queued behind it
        assert r_change.status_code == 403, r_change.status_code
        assert actions == ["org.ownership_transferred"], actions
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners


async def test_transfer_to_a_member_who_is_leaving(crew, client_for, su):
    owner = await client_for(crew.org.owner)
    leaver = await client_for(crew.users["member"])
    results = await asyncio.gather(
        owner.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD}),
        leaver.post(f"/orgs/{crew.org.slug}/leave"),
    )
    transfer, leave = (r.status_code for r in results)
    # either the transfer won (the new owner may no longer leave) or the leave won (nobody to transfer to)
    assert (transfer, leave) in {(303, 403), (404, 303), (409, 303)}, (transfer, leave)
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners


async def _storm(crew, client_for, su, rng: random.Random) -> dict:
    """Everyone at once: two transfers, leaves, removals and role changes; a random selection of
    them, started in random order with a little random jitter."""
    slug, ids, users = crew.org.slug, crew.memberships, crew.users
    owner = crew.org.owner
    plan = [
        (owner, f"/orgs/{slug}/transfer", {"member_id": str(ids["member"]), "password": PASSWORD}),
        (owner, f"/orgs/{slug}/transfer", {"member_id": str(ids["billing_admin"]), "password": PASSWORD}),
        (users["member"], f"/orgs/{slug}/leave", {}),
        (users["billing_admin"], f"/orgs/{slug}/leave", {}),
        (users["compliance_officer"], f"/orgs/{slug}/leave", {}),
        (owner, f"/orgs/{slug}/members/{ids['member']}/remove", {}),
        (owner, f"/orgs/{slug}/members/{ids['compliance_officer']}/role", {"role": "billing_admin"}),
        (owner, f"/orgs/{slug}/members/{ids['extra']}/remove", {}),
        (users["extra"], f"/orgs/{slug}/leave", {}),
        (owner, f"/orgs/{slug}/leave", {}),
    ]
    plan = rng.sample(plan, rng.randint(3, len(plan)))
    clients = [await client_for(user) for user, *_ in plan]

    async def send(c, url, data):
        await asyncio.sleep(rng.random() * 0.03)
        return await c.post(url, data)

    responses = await asyncio.wait_for(asyncio.gather(*(send(c, url, data) for c, (_, url, data) in zip(clients, plan))), 60)
    return {"plan": plan, "responses": responses}


@pytest.mark.parametrize("seed", range(10))
async def test_storms_never_leave_zero_or_two_owners(make_world, make_member, su, client_for, seed):
    crew = await make_world(objects=False)
    crew.users["extra"] = await make_member(crew.org, "member")
    crew.memberships["extra"] = await membership_id(su, crew.org, crew.users["extra"])
    result = await _storm(crew, client_for, su, random.Random(seed))
    codes = [r.status_code for r in result["responses"]]
    assert set(codes) <= ALLOWED, codes
    for r in result["responses"]:
        text = text_of(r)
        if r.status_code == 409:
            assert "at the same moment" in text or "transfer ownership" in text, text
        if r.status_code == 403:
            assert "doesn't allow" in text or "no longer the owner" in text, text
    owners = await owner_count(su, crew.org)
    assert owners == 1, owners
    # every success left exactly one event, every refusal none
    actions = await mutation_actions(su, crew.org)
    assert len(actions) == codes.count(303), (actions, codes)
    # the owner is whoever the last transfer named (or the original owner)
    transfers = await events(su, crew.org, "org.ownership_transferred")
    owner_mid = await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND role = 'owner'", crew.org.id)
    expected_owner = transfers[-1]["target_id"] if transfers else str(crew.memberships["owner"])
    assert str(owner_mid) == expected_owner, (owner_mid, expected_owner)
    # whoever left is gone, and the owner never did
    roles = await roles_of(su, crew.org)
    mids = ids_of(crew)
    for (user, url, _), r in zip(result["plan"], result["responses"]):
        if url.endswith("/leave") and r.status_code == 303:
            leaver = mids[user.id]
            assert leaver not in roles, (url, leaver)
            assert str(leaver) != str(owner_mid), (url, leaver)
    # the kept count followed every concurrent leave and removal, and nothing else
    await assert_member_count_exact(su, crew.org, len(roles))


@pytest.mark.parametrize("seed", range(3))
async def test_double_leave_and_remove_race(crew, client_for, su, seed):
    member = crew.users["compliance_officer"]
    mid = crew.memberships["compliance_officer"]
    reqs = [
        (await client_for(member), f"/orgs/{crew.org.slug}/leave"),
        (await client_for(member), f"/orgs/{crew.org.slug}/leave"),
        (await client_for(crew.org.owner), f"/orgs/{crew.org.slug}/members/{mid}/remove"),
        (await client_for(crew.org.owner), f"/orgs/{crew.org.slug}/members/{mid}/role"),
    ]
    random.Random(seed).shuffle(reqs)
    responses = await asyncio.gather(*(c.post(url, {"role": "member"} if url.endswith("/role") else {}) for c, url in reqs))
    codes = [r.status_code for r in responses]
    assert set(codes) <= ALLOWED, codes
    gone = [r for (c, url), r in zip(reqs, responses) if not url.endswith("/role") and r.status_code == 303]
    assert len(gone) == 1, codes  # exactly one of the leaves/removal happened
    roles = await roles_of(su, crew.org)
    assert mid not in roles, roles
    actions = await mutation_actions(su, crew.org)
    assert len(actions) == codes.count(303), (actions, codes)
    await assert_member_count_exact(su, crew.org, 3)
