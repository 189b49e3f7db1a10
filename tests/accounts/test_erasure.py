"""A person's own data (SPEC §14, SECURITY 46): the download holds theirs and nobody else's;
deleting the account is refused while they own an org, and afterwards no table holds their name or
email — the audit trail keeps what they did under a stable pseudonym."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from portal.accounts.erasure import pseudonym
from tests.factories import PASSWORD, add_role, unique


async def _every_row_mentioning(su, *needles: str) -> dict[str, int]:
    """Every table of the schema, searched as text for each needle: {table: rows}."""
    tables = [r["tablename"] for r in await su.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    found = {}
    for table in tables:
        for needle in needles:
            n = await su.fetchval(f"SELECT count(*) FROM {table} t WHERE strpos(lower(t::text), lower($1)) > 0", needle)
            if n:
                found[f"{table}: {needle}"] = n
    return found


async def test_the_download_holds_the_persons_data_and_no_one_elses(app, make_org, make_member, client_for):
    org, other = await make_org(), await make_org()
    person = await make_member(org, "member")
    await make_member(other, "member", user=person)
    someone = await make_member(org, "member")
    mine = await client_for(person)
    assert (await mine.post(f"/orgs/{org.slug}/agents", {"name": "Mine", "model": "m-1", "status": "active"})).status_code == 303
    theirs = await client_for(someone)
    assert (await theirs.post(f"/orgs/{org.slug}/agents", {"name": "Theirs", "model": "m-1", "status": "active"})).status_code == 303

    r = await mine.get("/account/data")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"].startswith("attachment;") and r.headers["cache-control"] == "no-store"
    data = r.json()
    assert data["account"]["email"] == person.email and data["sessions"]
    assert sorted(m["organization"]["slug"] for m in data["memberships"]) == sorted([org.slug, other.slug])
    [in_org] = [m for m in data["memberships"] if m["organization"]["slug"] == org.slug]
    assert [e["target"]["label"] for e in in_org["audit_events_performed"] if e["action"] == "agent.created"] == ["Mine"]
    assert someone.email not in r.text and "Theirs" not in r.text
    assert (await app_client_anonymous(app).get("/account/data")).status_code in (302, 303, 401)


def app_client_anonymous(app):
    from tests.factories import Client

    return Client(app)


async def test_an_owner_is_told_to_transfer_first_and_nothing_changes(app, make_org, client_for, su):
    org = await make_org()
    owner = await client_for(org.owner)
    page = await owner.get("/account")
    assert f"/orgs/{org.slug}/transfer" in page.text and "Delete my account" not in page.text
    r = await owner.post("/account/delete", {"password": PASSWORD})
    assert r.status_code == 409 and org.name in r.text and f"/orgs/{org.slug}/transfer" in r.text
    assert await su.fetchval("SELECT count(*) FROM app_user WHERE id = $1", org.owner.id) == 1
    assert await su.fetchval("SELECT role FROM membership WHERE org_id = $1 AND user_id = $2", org.id, org.owner.id) == "owner"


async def test_a_wrong_password_deletes_nothing(app, make_org, make_member, client_for, su):
    org = await make_org()
    person = await make_member(org)
    c = await client_for(person)
    r = await c.post("/account/delete", {"password": "not-my-password"})
    assert r.status_code == 422 and "That password isn" in r.text
    assert await su.fetchval("SELECT count(*) FROM membership WHERE user_id = $1", person.id) == 1


async def test_deletion_leaves_nothing_of_the_person_but_the_pseudonymised_trail(app, make_org, make_member, make_user, client_for, su, outbox):
    name = f"Erin {unique('Erasable')}"
    person = await make_user(email=f"{unique('erin')}@example.test", name=name)
    a, b, c = await make_org(), await make_org(), await make_org()
    await make_member(a, "member", user=person)
    await make_member(b, "billing_admin", user=person)
    await su.execute("UPDATE billing_settings SET billing_email = $2 WHERE org_id = $1", b.id, person.email)
    mine = await client_for(person)
    assert (await mine.post(f"/orgs/{a.slug}/agents", {"name": "Erin's agent", "model": "m-1", "status": "active"})).status_code == 303
    owner_b = await client_for(b.owner)
    assert (await owner_b.post(f"/orgs/{b.slug}/members/{await _membership(su, b, person)}/role", {"role": "compliance_officer"})).status_code in (200, 303)
    owner_c = await client_for(c.owner)
    assert (await owner_c.post(f"/orgs/{c.slug}/invites", {"email": person.email, "role": "member"})).status_code == 303
    assert (await app_client_anonymous(app).post("/forgot-password", {"email": person.email})).status_code in (200, 303)
    assert await _every_row_mentioning(su, person.email)  # the search finds them before
    auditor = await add_role(su, a.id, name="Auditor")  # in A they now hold a custom role
    await su.execute("UPDATE membership SET role = 'custom', custom_role_id = $3 WHERE org_id = $1 AND user_id = $2", a.id, person.id, auditor)

    r = await mine.post("/account/delete", {"password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    assert (await mine.get("/account")).status_code in (302, 303)  # signed out: the session went with the account
    assert await _every_row_mentioning(su, person.email, name) == {}

    alias = pseudonym(person.id)
    left = await su.fetch("SELECT org_id, actor_email, target_label FROM audit_event WHERE action = 'member.left' AND actor_email = $1", alias)
    assert sorted(r["org_id"] for r in left) == sorted([a.id, b.id]) and {r["target_label"] for r in left} == {alias}
    departed = json.loads(await su.fetchval("SELECT before FROM audit_event WHERE org_id = $1 AND action = 'member.left'", a.id))
    # the role as any departure records it (its name went with every "*name*" field of an event about them)
    assert (departed["role"], departed["custom_role_id"]) == ("custom", str(auditor)) and "role_name" in departed
    created = await su.fetchrow("SELECT actor_email, actor_id FROM audit_event WHERE org_id = $1 AND action = 'agent.created'", a.id)
    assert created["actor_email"] == alias and created["actor_id"] == person.id  # still one actor in A's history
    changed = await su.fetchrow("SELECT target_label FROM audit_event WHERE org_id = $1 AND action = 'member.role_changed'", b.id)
    assert changed["target_label"] == alias
    assert await su.fetchval("SELECT billing_email FROM billing_settings WHERE org_id = $1", b.id) is None
    assert await su.fetchval("SELECT count(*) FROM invite WHERE org_id = $1", c.id) == 0
    assert await su.fetchval("SELECT member_count FROM organization WHERE id = $1", a.id) == 1


async def _membership(su, org, user):
    return await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id)


async def test_deletion_racing_an_ownership_transfer_to_the_person_leaves_one_owner(app, make_org, make_member, client_for, su):
    """The owner hands the org to the person while the person deletes their account: one wins.
    Either the person is gone and the org keeps its owner, or the person owns it and is still here."""
    for _ in range(3):
        org = await make_org()
        person = await make_member(org, "member")
        owner, mine = await client_for(org.owner), await client_for(person)
        member_id = await _membership(su, org, person)
        transfer, deletion = await asyncio.gather(
            owner.post(f"/orgs/{org.slug}/transfer", {"member_id": str(member_id), "password": PASSWORD}),
            mine.post("/account/delete", {"password": PASSWORD}),
        )
        gone = await su.fetchval("SELECT count(*) FROM app_user WHERE id = $1", person.id) == 0
        owners = await su.fetch("SELECT user_id FROM membership WHERE org_id = $1 AND role = 'owner'", org.id)
        assert len(owners) == 1, (transfer.status_code, deletion.status_code)
        if gone:
            assert deletion.status_code == 303 and owners[0]["user_id"] == org.owner.id
        else:
            assert deletion.status_code == 409 and owners[0]["user_id"] == person.id
        assert transfer.status_code < 500 and deletion.status_code < 500


async def test_the_erasure_powers_are_the_owner_roles_alone_and_only_for_the_signed_in_person(app_conn, make_org, make_user, make_invite):
    """``app.erasing`` opens nothing to the app role (the erasure policies name the owner role),
    and ``erase_person`` erases no one but the person the transaction is signed in as."""
    org = await make_org()
    victim = await make_user()
    await make_invite(org, victim.email)
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.erasing', 'on', true)")
        assert await app_conn.fetchval("SELECT count(*) FROM invite WHERE email = $1", victim.email) == 0
        assert await app_conn.fetchval("SELECT count(*) FROM audit_event") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app_conn.execute("UPDATE audit_event SET actor_email = 'x'")
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.user_id', $1, true)", str(org.owner.id))
        with pytest.raises(asyncpg.RaiseError, match="signed-in person only"):
            await app_conn.fetchval("SELECT erase_person($1, $2)", victim.id, pseudonym(victim.id))
    async with app_conn.transaction():  # as the person: only a pseudonym of the expected form
        await app_conn.execute("SELECT set_config('app.user_id', $1, true)", str(victim.id))
        with pytest.raises(asyncpg.RaiseError, match="not a pseudonym"):
            await app_conn.fetchval("SELECT erase_person($1, 'Anything I like')", victim.id)
    async with app_conn.transaction():  # and never while they belong to an org
        await app_conn.execute("SELECT set_config('app.user_id', $1, true)", str(org.owner.id))
        with pytest.raises(asyncpg.ObjectInUseError):
            await app_conn.fetchval("SELECT erase_person($1, $2)", org.owner.id, pseudonym(org.owner.id))


async def test_a_name_shared_with_other_data_rewrites_nothing_of_anyone_else(app, make_org, make_member, make_user, client_for, su):
    """Names are neither unique nor chosen carefully: a person called "member" (or like a teammate
    elsewhere) deleting their account must leave other people's events exactly as they were."""
    bystander_org = await make_org()
    namesake = await make_member(bystander_org, "member", user=await make_user(name="member"))
    owner = await client_for(bystander_org.owner)
    membership = await _membership(su, bystander_org, namesake)
    assert (await owner.post(f"/orgs/{bystander_org.slug}/members/{membership}/role", {"role": "billing_admin"})).status_code in (200, 303)
    before = await su.fetch("SELECT id, actor_email, target_label, before, after, ip FROM audit_event WHERE org_id = $1 ORDER BY id", bystander_org.id)

    org = await make_org()
    person = await make_member(org, "member", user=await make_user(name="member"))
    assert (await (await client_for(person)).post("/account/delete", {"password": PASSWORD})).status_code == 303
    after = await su.fetch("SELECT id, actor_email, target_label, before, after, ip FROM audit_event WHERE org_id = $1 ORDER BY id", bystander_org.id)
    assert [dict(r) for r in after] == [dict(r) for r in before]


async def test_the_address_inside_someone_elses_event_becomes_the_pseudonym_and_only_that_address(app, make_org, make_member, make_user, client_for, su):
    """An event about something else that lists the person's address (a team's members, say) keeps
    its place, with the address replaced; a longer address that merely contains it stays."""
    org = await make_org()
    person = await make_member(org, "member", user=await make_user(email=f"{unique('ann')}@example.test"))
    longer = f"jo{person.email}.au"  # another person's address, with the first inside it
    event = await su.fetchval(
        """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_label, after)
           VALUES ($1, $2, $3, 'team.updated', 'team', 'Platform', $4) RETURNING id""",
        org.id, org.owner.id, org.owner.email,
        json.dumps({"members": [f"Ann <{person.email}>", longer], "note": f"asked by {person.email}."}),
    )
    assert (await (await client_for(person)).post("/account/delete", {"password": PASSWORD})).status_code == 303
    after = json.loads(await su.fetchval("SELECT after FROM audit_event WHERE org_id = $1 AND id = $2", org.id, event))
    alias = pseudonym(person.id)
    assert after == {"members": [alias, longer], "note": alias}
    assert await _every_row_mentioning(su, f"<{person.email}>") == {}
