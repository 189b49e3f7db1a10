"""Custom roles (SPEC §13, SECURITY 44): the roles pages, holding a role, and containment: a
holder of ``members.manage`` never grants, edits or touches anything beyond its own permissions."""

from __future__ import annotations

import html
import json
import re

from tests.factories import add_role, events, give_role, text_of as _text_of, unique


def text_of(r) -> str:
    return html.unescape(_text_of(r))


def role_url(w, role_id=None, suffix: str = "") -> str:
    base = f"/orgs/{w.org.slug}/roles"
    return f"{base}/{role_id}{suffix}" if role_id else base + suffix


async def role_row(su, role_id):
    return await su.fetchrow("SELECT * FROM org_role WHERE id = $1", role_id)


# -- the owner's pages ----------------------------------------------------------------------------
async def test_the_auditor_journey(make_world, client_for, su):
    """SPEC §13's example, end to end through the pages: the owner creates "Auditor (read-only)"
    with audit.view + export.use, gives it to a member from the members page; the member sees
    exactly those pages; removing export.use hides exports on their very next click."""
    w = await make_world()
    owner, member = await client_for(w.users["owner"]), await client_for(w.users["member"])
    slug = w.org.slug

    r = await owner.post(role_url(w), {"name": "Auditor (read-only)", "description": "Reviews access.",
                                        "permissions": ["audit.view", "export.use"]})
    assert r.status_code == 303, text_of(r)
    role_id = await su.fetchval("SELECT id FROM org_role WHERE org_id = $1 AND name = 'Auditor (read-only)'", w.org.id)
    assert r.headers["location"] == role_url(w, role_id)
    assert sorted((await role_row(su, role_id))["permissions"]) == ["audit.view", "export.use"]

    page = await owner.get(f"/orgs/{slug}/members")
    assert f'<option value="{role_id}"' in page.text  # offered in every role menu
    r = await owner.post(f"/orgs/{slug}/members/{w.memberships['member']}/role", {"role": str(role_id)})
    assert r.status_code == 303
    row = await su.fetchrow("SELECT role, custom_role_id FROM membership WHERE id = $1", w.memberships["member"])
    assert (row["role"], row["custom_role_id"]) == ("custom", role_id)

    allowed = {"": 200, "/members": 200, "/agents": 200, "/audit": 200, "/access-report": 200, "/exports": 200}
    denied = ["/agents/new", "/billing", "/invites", "/roles", "/settings"]
    for path, code in allowed.items():
        assert (await member.get(f"/orgs/{slug}{path}")).status_code == code, path
    for path in denied:
        assert (await member.get(f"/orgs/{slug}{path}")).status_code == 403, path
    dashboard = (await member.get(f"/orgs/{slug}")).text
    assert "Auditor (read-only)" in dashboard and ">Data export<" in dashboard and ">Billing<" not in dashboard

    r = await owner.post(role_url(w, role_id, "/edit"), {"name": "Auditor (read-only)", "description": "Reviews access.",
                                                          "permissions": ["audit.view"]})
    assert r.status_code == 303
    assert (await member.get(f"/orgs/{slug}/exports")).status_code == 403  # the very next click
    assert ">Data export<" not in (await member.get(f"/orgs/{slug}")).text
    assert (await member.get(f"/orgs/{slug}/audit")).status_code == 200

    edited = (await events(su, w.org, "role.updated"))[-1]
    assert json.loads(edited["before"]) == {"permissions": ["audit.view", "export.use"]}
    assert json.loads(edited["after"]) == {"permissions": ["audit.view"]}
    granted = (await events(su, w.org, "member.role_changed"))[-1]
    assert json.loads(granted["after"]) == {"role": "custom", "custom_role_id": str(role_id), "role_name": "Auditor (read-only)"}


async def test_roles_page_lists_built_in_and_custom_roles(make_world, client_for):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    r = await owner.get(role_url(w))
    assert r.status_code == 200
    text = text_of(r)
    for label in ("Owner", "Member", "Billing admin", "Compliance officer", "Built-in roles", "Custom roles"):
        assert label in text, label
    assert "See the audit log, Export data" in text  # the world's role, its permissions in words
    form = await owner.get(role_url(w, suffix="/new"))
    for perm in ("resources.manage", "billing.manage", "audit.view", "export.use", "members.manage", "org.leave"):
        assert f'value="{perm}"' in form.text, perm
    assert 'value="org.manage"' not in form.text and 'value="org.view"' not in form.text


async def test_org_manage_is_never_grantable_and_bad_input_is_explained(make_world, client_for, su):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    before = await su.fetchval("SELECT count(*) FROM org_role WHERE org_id = $1", w.org.id)
    for form, message in (
        ({"name": "Boss", "permissions": ["org.manage"]}, "stays with the owner"),
        ({"name": "Odd", "permissions": ["root"]}, "Choose permissions from the list."),
        ({"name": "", "permissions": ["audit.view"]}, "name"),
    ):
        r = await owner.post(role_url(w), form)
        assert r.status_code == 422, form
        assert message in text_of(r), (form, text_of(r)[:300])
    r = await owner.post(role_url(w), {"name": f"Viewer {unique('v')}", "permissions": ["org.view"]})
    assert r.status_code == 303  # org.view is every role's: accepted, not stored
    assert await su.fetchval("SELECT count(*) FROM org_role WHERE org_id = $1", w.org.id) == before + 1
    stored = await su.fetchval("SELECT permissions FROM org_role WHERE org_id = $1 ORDER BY created_at DESC LIMIT 1", w.org.id)
    assert stored == []
    r = await owner.post(role_url(w), {"name": (await role_row(su, w.role))["name"].upper(), "permissions": []})
    assert r.status_code == 422 and "already has this name" in text_of(r)


async def test_a_held_role_cannot_be_deleted_and_its_page_lists_the_holders(make_world, client_for, su):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    await give_role(su, w.org.id, w.memberships["billing_admin"], w.role)
    await su.execute("UPDATE invite SET role = 'custom', custom_role_id = $2 WHERE id = $1", w.invite, w.role)
    confirm = await owner.get(role_url(w, w.role, "/delete"))
    assert confirm.status_code == 200
    holder = w.users["billing_admin"]
    assert "is held by 1 member and 1 pending invite" in text_of(confirm)
    assert holder.email in confirm.text
    r = await owner.post(role_url(w, w.role, "/delete"))
    assert r.status_code == 409
    assert await role_row(su, w.role) is not None
    assert holder.email in (await owner.get(role_url(w, w.role))).text

    r = await owner.post(f"/orgs/{w.org.slug}/members/{w.memberships['billing_admin']}/role", {"role": "billing_admin"})
    assert r.status_code == 303
    r = await owner.post(f"/orgs/{w.org.slug}/invites/{w.invite}/revoke")
    assert r.status_code == 303
    r = await owner.post(role_url(w, w.role, "/delete"))
    assert r.status_code == 303, text_of(r)[:500]
    assert await role_row(su, w.role) is None
    deleted = (await events(su, w.org, "role.deleted"))[-1]
    assert json.loads(deleted["before"])["permissions"] == ["audit.view", "export.use"]


async def test_the_database_refuses_what_the_code_must_never_do(make_world, su):
    """Structural: a membership can't hold another org's role, and a held role can't be deleted."""
    import asyncpg
    import pytest

    mine, theirs = await make_world(), await make_world()
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await give_role(su, mine.org.id, mine.memberships["member"], theirs.role)
    await give_role(su, mine.org.id, mine.memberships["member"], mine.role)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await su.execute("DELETE FROM org_role WHERE id = $1", mine.role)
    with pytest.raises(asyncpg.CheckViolationError):
        await su.execute("UPDATE org_role SET permissions = '{org.manage}' WHERE id = $1", mine.role)
    with pytest.raises(asyncpg.CheckViolationError):
        await su.execute("UPDATE membership SET role = 'custom', custom_role_id = NULL WHERE id = $1", mine.memberships["compliance_officer"])
    await su.execute("DELETE FROM organization WHERE id = $1", mine.org.id)  # the org still goes, roles and all
    assert await su.fetchval("SELECT count(*) FROM org_role WHERE org_id = $1", mine.org.id) == 0


async def test_another_orgs_role_is_not_a_choice(make_world, client_for, su, snapshot):
    mine, theirs = await make_world(), await make_world()
    owner = await client_for(mine.users["owner"])
    before = await snapshot(mine.org.id)
    r = await owner.post(f"/orgs/{mine.org.slug}/members/{mine.memberships['member']}/role", {"role": str(theirs.role)})
    assert r.status_code == 422 and "Choose a role from the list." in text_of(r)
    r = await owner.post(f"/orgs/{mine.org.slug}/invites", {"email": f"{unique('x')}@example.test", "role": str(theirs.role)})
    assert r.status_code == 422 and "Choose a role from the list." in text_of(r)
    assert await snapshot(mine.org.id) == before


async def test_invites_carry_a_custom_role_to_the_new_member(make_world, make_user, client_for, su, smtp_sink):
    from portal.mail import queue as mail_queue

    w = await make_world()
    owner = await client_for(w.users["owner"])
    name = (await role_row(su, w.role))["name"]
    invitee = await make_user()
    r = await owner.post(f"/orgs/{w.org.slug}/invites", {"email": invitee.email, "role": str(w.role)})
    assert r.status_code == 303
    invite = await su.fetchrow("SELECT role, custom_role_id FROM invite WHERE org_id = $1 AND email = $2", w.org.id, invitee.email)
    assert (invite["role"], invite["custom_role_id"]) == ("custom", w.role)
    assert name in text_of(await owner.get(f"/orgs/{w.org.slug}/invites"))
    await mail_queue.drain()
    [message] = await smtp_sink.wait_for(1)
    body = message.get_body(("plain",)).get_content()
    assert name in body
    path = re.search(r"/invites/[A-Za-z0-9_-]+", body).group(0)
    newcomer = await client_for(invitee)
    assert name in text_of(await newcomer.get(path))
    r = await newcomer.post(path + "/accept")
    assert r.status_code == 303
    assert name in text_of(await newcomer.get(r.headers["location"]))  # "You joined as …", and the role badge
    row = await su.fetchrow(
        "SELECT role, custom_role_id FROM membership WHERE org_id = $1 AND user_id = $2", w.org.id, invitee.id
    )
    assert (row["role"], row["custom_role_id"]) == ("custom", w.role)
    assert (await newcomer.get(f"/orgs/{w.org.slug}/audit")).status_code == 200
    assert (await newcomer.get(f"/orgs/{w.org.slug}/agents/new")).status_code == 403
    joined = (await events(su, w.org, "member.joined"))[-1]
    assert json.loads(joined["after"])["role_name"] == name


async def test_a_custom_role_is_named_in_the_org_list_and_switcher(make_world, make_org, make_member, client_for, su):
    """The org list and the switcher name a custom role in every org (policy held_roles lets a
    person read the roles they hold, and nothing else, before an org is chosen)."""
    w = await make_world()
    name = (await role_row(su, w.role))["name"]
    other = await make_org()
    await make_member(other, "member", w.users["member"])
    await give_role(su, w.org.id, w.memberships["member"], w.role)
    c = await client_for(w.users["member"])
    assert name in text_of(await c.get("/orgs"))
    assert name in text_of(await c.get(f"/orgs/{other.slug}"))  # the switcher, from the other org
    unheld = await add_role(su, w.org.id, "Nobody holds me")
    assert "Nobody holds me" not in text_of(await c.get("/orgs"))
    assert unheld


async def test_ownership_can_go_to_a_custom_role_holder(make_world, client_for, su):
    from tests.factories import PASSWORD

    w = await make_world()
    await give_role(su, w.org.id, w.memberships["member"], w.role)
    owner = await client_for(w.users["owner"])
    r = await owner.post(f"/orgs/{w.org.slug}/transfer", {"member_id": str(w.memberships["member"]), "password": PASSWORD})
    assert r.status_code == 303, text_of(r)[:300]
    row = await su.fetchrow("SELECT role, custom_role_id FROM membership WHERE id = $1", w.memberships["member"])
    assert (row["role"], row["custom_role_id"]) == ("owner", None)
    transferred = (await events(su, w.org, "org.ownership_transferred"))[-1]
    assert json.loads(transferred["before"])["new_owner_role_name"] == (await role_row(su, w.role))["name"]


async def test_a_teams_members_show_their_custom_role(make_world, client_for, su):
    w = await make_world()
    await give_role(su, w.org.id, w.team_member, w.role)
    owner = await client_for(w.users["owner"])
    assert (await role_row(su, w.role))["name"] in text_of(await owner.get(f"/orgs/{w.org.slug}/teams/{w.team}"))


async def test_a_role_a_live_api_token_holds_cannot_be_deleted(make_world, client_for, su):
    from tests.factories import add_api_token

    w = await make_world()
    owner = await client_for(w.users["owner"])
    token_id, _ = await add_api_token(su, w.org, "custom", custom_role_id=w.role)
    r = await owner.post(role_url(w, w.role, "/delete"))
    assert r.status_code == 409 and "1 API token" in text_of(r)
    await su.execute("UPDATE api_token SET revoked_at = now() WHERE id = $1", token_id)
    assert (await owner.post(role_url(w, w.role, "/delete"))).status_code == 303  # a revoked token lets go of it
    assert await su.fetchval("SELECT custom_role_id FROM api_token WHERE id = $1", token_id) is None
