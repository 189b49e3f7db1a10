"""``organization.member_count``: exact whatever changes the memberships, kept by the database
(migrations/…30t13…), never written by anything else, and never left behind by a change it
cannot follow."""

from __future__ import annotations

import asyncpg
import pytest

from tests.factories import assert_member_count_exact


async def in_org(conn: asyncpg.Connection, org_id) -> None:
    await conn.execute("SELECT set_config('app.org_id', $1, true)", str(org_id))


async def test_bulk_inserts_and_deletes_across_orgs_are_counted(su, make_org, make_user):
    a, b = await make_org(), await make_org()
    await assert_member_count_exact(su, a, 1)
    users = [await make_user() for _ in range(5)]
    # one statement, two orgs: the statement-level trigger groups by org
    await su.execute(
        """INSERT INTO membership (org_id, user_id, role)
           SELECT CASE WHEN i <= 3 THEN $1::uuid ELSE $2::uuid END, u, 'member'
           FROM unnest($3::uuid[]) WITH ORDINALITY AS t(u, i)""",
        a.id, b.id, [u.id for u in users],
    )
    await assert_member_count_exact(su, a, 4)
    await assert_member_count_exact(su, b, 3)
    await su.execute("DELETE FROM membership WHERE user_id = ANY($1::uuid[])", [u.id for u in users[2:4]])
    await assert_member_count_exact(su, a, 3)
    await assert_member_count_exact(su, b, 2)
    await su.execute("DELETE FROM membership WHERE user_id = $1", users[0].id)  # nothing of b's
    await assert_member_count_exact(su, a, 2)
    await assert_member_count_exact(su, b, 2)


async def test_the_app_role_cannot_write_the_count(app_conn, make_org, su):
    org = await make_org()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with app_conn.transaction():
            await in_org(app_conn, org.id)
            await app_conn.execute("UPDATE organization SET member_count = 100 WHERE id = $1", org.id)
    async with app_conn.transaction():  # the rest of the row is as writable as before
        await in_org(app_conn, org.id)
        assert await app_conn.execute("UPDATE organization SET name = 'Renamed' WHERE id = $1", org.id) == "UPDATE 1"
    await assert_member_count_exact(su, org, 1)


async def test_a_change_the_count_cannot_follow_is_refused_not_drifted(app_conn, make_org, make_member, make_user, su):
    """Deleting an account cascades to its memberships in every org, below RLS; the app role may
    update only its current org's row, so the count of the other org could not follow: the whole
    statement fails (account deletion must leave each org in that org's own transaction)."""
    a, b = await make_org(), await make_org()
    person = await make_user()
    await make_member(a, "member", person)
    await make_member(b, "member", person)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="member count"):
        async with app_conn.transaction():
            await in_org(app_conn, a.id)
            await app_conn.execute("DELETE FROM app_user WHERE id = $1", person.id)
    assert await su.fetchval("SELECT count(*) FROM membership WHERE user_id = $1", person.id) == 2
    await assert_member_count_exact(su, a, 2)
    await assert_member_count_exact(su, b, 2)


async def test_deleting_an_org_with_its_members_needs_no_count(app_conn, make_org, make_member, su):
    org = await make_org()
    for _ in range(3):
        await make_member(org, "member")
    async with app_conn.transaction():
        await in_org(app_conn, org.id)
        assert await app_conn.execute("DELETE FROM organization WHERE id = $1", org.id) == "DELETE 1"
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", org.id) == 0


async def test_pages_show_the_kept_count(make_org, make_member, client_for, su):
    org = await make_org()
    for role in ("member", "billing_admin", "compliance_officer"):
        await make_member(org, role)
    c = await client_for(org.owner)
    assert "4 members in" in (await c.get(f"/orgs/{org.slug}/members")).text
    dashboard = await c.get(f"/orgs/{org.slug}")
    assert '<span class="stat-value">4</span><span class="stat-label">Members</span>' in dashboard.text
    await assert_member_count_exact(su, org, 4)
