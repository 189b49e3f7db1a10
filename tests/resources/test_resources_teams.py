"""Teams: create, members added and removed in place (htmx) or with plain forms, large orgs add by
email, and leaving the org drops people from its teams."""

from __future__ import annotations

from tests.factories import add_team, events, text_of


async def test_create_team_then_add_and_remove_members_without_javascript(world, client_for, su):
    c = await client_for(world.users["member"])  # members manage resources too
    base = f"/orgs/{world.org.slug}/teams"
    r = await c.post(base, {"name": "Platform", "description": "Infra"})
    assert r.status_code == 303
    url = r.headers["location"]
    page = await c.get(url)
    assert "Team created. Now add its members." in page.text and "Nobody is in this team yet." in page.text
    for role in ("owner", "compliance_officer"):
        assert (await c.post(f"{url}/members", {"membership_id": str(world.memberships[role])})).status_code == 303
    page = await c.get(url)
    assert world.users["owner"].email in page.text and world.users["compliance_officer"].email in page.text
    assert "Members (2)" in page.text
    r = await c.post(f"{url}/members/{world.memberships['owner']}/remove")
    assert r.status_code == 303 and r.headers["location"] == url
    assert "Members (1)" in (await c.get(url)).text
    added = await events(su, world.org.id, "team.member_added")
    removed = await events(su, world.org.id, "team.member_removed")
    assert len(added) == 2 and len(removed) == 1 and world.users["owner"].email in removed[0]["before"]


async def test_htmx_add_and_remove_swap_the_member_list(world, client_for, su):
    c = await client_for(world.users["owner"])
    url = f"/orgs/{world.org.slug}/teams/{world.team}"
    r = await c.post(f"{url}/members", {"membership_id": str(world.memberships["billing_admin"])}, htmx=True)
    assert r.status_code == 200 and "<html" not in r.text
    assert "Members (2)" in r.text and world.users["billing_admin"].email in r.text and "added to the team" in r.text
    # already in the team: 422 with the list and the message in place
    r = await c.post(f"{url}/members", {"membership_id": str(world.memberships["billing_admin"])}, htmx=True)
    assert r.status_code == 422 and "is already in this team" in r.text and "<html" not in r.text
    r = await c.post(f"{url}/members", {}, htmx=True)
    assert r.status_code == 422 and "Choose a member to add." in r.text
    r = await c.post(f"{url}/members/{world.memberships['billing_admin']}/remove", htmx=True)
    assert r.status_code == 200 and "Members (1)" in r.text and "removed from the team" in r.text
    # removing someone who isn't in the team: 404, nothing written
    r = await c.post(f"{url}/members/{world.memberships['billing_admin']}/remove", htmx=True)
    assert r.status_code == 404
    assert len(await events(su, world.org.id, "team.member_removed")) == 1


async def test_large_orgs_add_members_by_email(world, client_for, su, make_member, monkeypatch):
    from portal.resources.teams import service

    monkeypatch.setattr(service, "CHOICES_MAX", 2)
    c = await client_for(world.users["owner"])
    url = f"/orgs/{world.org.slug}/teams/{world.team}"
    page = await c.get(url)
    assert 'name="email"' in page.text and 'name="membership_id"' not in page.text
    r = await c.post(f"{url}/members", {"email": world.users["billing_admin"].email.upper()})
    assert r.status_code == 303
    r = await c.post(f"{url}/members", {"email": "stranger@example.test"})
    assert r.status_code == 422 and "Invite them first" in r.text


async def test_removing_a_member_from_the_org_drops_them_from_teams(world, client_for, su):
    c = await client_for(world.users["owner"])
    url = f"/orgs/{world.org.slug}/teams/{world.team}"
    assert world.users["member"].email in (await c.get(url)).text
    await su.execute("DELETE FROM membership WHERE id = $1", world.team_member)
    page = await c.get(url)
    assert world.users["member"].email not in page.text and "Members (0)" in page.text


async def test_team_validation_and_delete(world, client_for, su):
    c = await client_for(world.users["owner"])
    base = f"/orgs/{world.org.slug}/teams"
    await add_team(su, world.org.id, "Ops")
    r = await c.post(base, {"name": "OPS"})
    assert r.status_code == 422 and "already has this name" in r.text
    r = await c.post(base, {"name": "", "description": "d" * 3000})
    assert r.status_code == 422 and 'id="e-name"' in r.text and 'id="e-description"' in r.text
    confirm = await c.get(f"{base}/{world.team}/delete")
    assert "member stays in the organization" in text_of(confirm)
    r = await c.post(f"{base}/{world.team}/delete")
    assert r.status_code == 303
    assert await su.fetchval("SELECT count(*) FROM team_member WHERE team_id = $1", world.team) == 0
    assert await su.fetchval("SELECT count(*) FROM membership WHERE id = $1", world.team_member) == 1
    (ev,) = await events(su, world.org.id, "team.deleted")
    assert '"members": 1' in ev["before"]


async def test_viewers_see_teams_without_controls(world, client_for):
    c = await client_for(world.users["billing_admin"])
    page = await c.get(f"/orgs/{world.org.slug}/teams/{world.team}")
    assert page.status_code == 200 and world.users["member"].email in page.text
    assert "/remove" not in page.text and "Add to team" not in page.text and "/edit" not in page.text
