"""The org's SCIM service, as far as it is built (issue 17): SCIM tokens on the owner's page,
discovery, Users read and searched with SCIM filters, and the isolation of the new principal."""

from __future__ import annotations

import asyncio
import json
import re

from tests.access_matrix import SCIM_ACCESS
from tests.factories import Client, add_api_token, bearer, events

SCIM_JSON = "application/scim+json"


async def test_the_owner_issues_a_scim_token_and_sees_the_base_url(make_world, client_for, su, app):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    r = await owner.post(f"/orgs/{w.org.slug}/scim", {"name": "Okta", "expires_in_days": "365"})
    assert r.status_code == 200 and 'id="new-token"' in r.text and f"/scim/v2/orgs/{w.org.slug}" in r.text
    token = re.search(r'id="new-token">(prt_[A-Za-z0-9_-]+)<', r.text).group(1)
    assert await su.fetchval("SELECT role FROM api_token WHERE org_id = $1 AND name = 'Okta'", w.org.id) == "scim"
    c = Client(app)
    assert (await c.http.get(f"/scim/v2/orgs/{w.org.slug}/ServiceProviderConfig", headers=bearer(token))).status_code == 200
    token_id = await su.fetchval("SELECT id FROM api_token WHERE org_id = $1 AND name = 'Okta'", w.org.id)
    assert f'id="token-{token_id}"' in (await owner.get(f"/orgs/{w.org.slug}/scim")).text
    assert f'id="token-{token_id}"' not in (await owner.get(f"/orgs/{w.org.slug}/api-tokens")).text  # SCIM's own page only
    revoked = await owner.post(f"/orgs/{w.org.slug}/scim/{token_id}/revoke", {})
    assert revoked.status_code == 303
    assert (await c.http.get(f"/scim/v2/orgs/{w.org.slug}/ServiceProviderConfig", headers=bearer(token))).status_code == 401
    for who in ("member", "billing_admin", "compliance_officer"):
        assert (await (await client_for(w.users[who])).get(f"/orgs/{w.org.slug}/scim")).status_code == 403
    await c.aclose()


async def test_agents_are_for_a_token_the_owner_allowed_them(make_world, client_for, su, app):
    """"Agents too" is off unless ticked; it is recorded, audited and shown on the list."""
    w = await make_world()
    owner = await client_for(w.users["owner"])
    page = (await owner.get(f"/orgs/{w.org.slug}/scim")).text
    assert 'name="manages_agents"' in page and 'name="manages_agents" value="1" checked' not in page
    await owner.post(f"/orgs/{w.org.slug}/scim", {"name": "People only", "expires_in_days": "30"})
    r = await owner.post(f"/orgs/{w.org.slug}/scim", {"name": "Agents too", "expires_in_days": "30", "manages_agents": "1"})
    token = re.search(r'id="new-token">(prt_[A-Za-z0-9_-]+)<', r.text).group(1)
    rows = dict(await su.fetch("SELECT name, manages_agents FROM api_token WHERE org_id = $1 AND name IN ('People only', 'Agents too')", w.org.id))
    assert rows == {"People only": False, "Agents too": True}
    created = [e for e in await events(su, w.org) if e["action"] == "scim_token.created"]
    assert sorted(json.loads(e["after"])["manages_agents"] for e in created) == [False, True]
    assert r.text.count('<span class="badge">Agents too</span>') == 1
    c = Client(app)
    types = (await c.http.get(f"/scim/v2/orgs/{w.org.slug}/ResourceTypes", headers=bearer(token))).json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group", "Agent"}
    await c.aclose()


async def test_discovery_answers_scim_json(idp):
    for path in ("ServiceProviderConfig", "ResourceTypes", "Schemas"):
        r = await idp.idp.get(f"{idp.base}/{path}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(SCIM_JSON), path
    types = (await idp.idp.get(f"{idp.base}/ResourceTypes")).json()
    assert {t["name"] for t in types["Resources"]} >= {"User", "Group"}


async def test_users_are_the_org_s_members_searched_with_scim_filters(idp, make_world):
    w, c = idp, idp.idp
    listed = (await c.get(f"{w.base}/Users")).json()
    emails = {u["userName"] for u in listed["Resources"]}
    assert {u.email for u in w.users.values()} <= emails and listed["totalResults"] == len(emails)
    other = await make_world()
    assert not emails & {u.email for u in other.users.values()}
    admin = w.users["billing_admin"]
    found = (await c.get(f"{w.base}/Users", params={"filter": f'userName eq "{admin.email.upper()}"'})).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["userName"] == admin.email
    user = (await c.get(f"{w.base}/Users/{found['Resources'][0]['id']}")).json()
    assert user["urn:ietf:params:scim:schemas:extension:praesidia:2.0:User"]["role"] == "billing_admin"
    page = (await c.get(f"{w.base}/Users", params={"startIndex": 2, "count": 2})).json()
    assert page["startIndex"] == 2 and len(page["Resources"]) == 2 and page["totalResults"] == len(emails)
    bad = await c.get(f"{w.base}/Users", params={"filter": 'title eq "x"'})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidFilter"
    assert (await c.get(f"{w.base}/Users/{other.memberships['member']}")).status_code == 404  # another org's member
    assert (await c.get(f"{w.base}/Users/not-an-id")).status_code == 404


async def test_the_scim_token_reaches_scim_only_and_other_credentials_never_reach_scim(idp, make_world, su, app, client_for):
    w = idp
    assert (await w.idp.get(f"/api/v1/orgs/{w.org.slug}/agents")).status_code == 403  # no JSON API for SCIM
    _, api_token = await add_api_token(su, w.org, "member")
    other = await make_world()
    _, theirs = await add_api_token(su, other.org, "scim")
    browser = await client_for(w.users["owner"])
    c = Client(app)
    _, agent_token = await add_api_token(su, w.org, agent_id=w.agent_used)
    for headers, code in (({}, 401), (bearer(api_token), 403), (bearer(agent_token), 403), (bearer(theirs), 404),
                          (bearer("prt_" + "A" * 43), 401)):
        for method in sorted({k.split()[0] for k in SCIM_ACCESS}):
            r = await c.http.request(method, f"{w.base}/Users", headers=headers, json={"userName": "x@example.com"})
            assert r.status_code == code and r.headers["content-type"].startswith(SCIM_JSON), (headers, method, r.status_code)
            assert r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert (await browser.get(f"{w.base}/Users")).status_code == 401  # a session is no credential here
    await c.aclose()


USER = "urn:ietf:params:scim:schemas:core:2.0:User"
EXT = "urn:ietf:params:scim:schemas:extension:praesidia:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def test_provisioning_a_new_person_creates_an_account_without_a_password_and_mails_a_link(idp, su, smtp_sink, client_for):
    from portal.mail import queue as mail_queue

    w, c = idp, idp.idp
    body = {"schemas": [USER, EXT], "userName": "New.Hire@Example.test", "name": {"givenName": "New", "familyName": "Hire"},
            "displayName": "New Hire", "externalId": "okta-1", "emails": [{"value": "new.hire@example.test", "type": "work"}],
            EXT: {"role": "billing_admin"}}
    r = await c.post(f"{w.base}/Users", json=body, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["userName"] == "new.hire@example.test" and user[EXT]["role"] == "billing_admin" and user["externalId"] == "okta-1"
    row = await su.fetchrow("SELECT m.role, m.scim_managed, u.password_hash FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.id = $1", user["id"])
    assert row["role"] == "billing_admin" and row["scim_managed"] and row["password_hash"].startswith("!scim:")
    await mail_queue.drain()
    mails = await smtp_sink.wait_for(1)
    assert "new.hire@example.test" in str(mails[0]["To"]) and "/reset-password/" in mails[0].as_string()
    assert w.org.name in str(mails[0]["Subject"]) and "choose your password" in str(mails[0]["Subject"])
    joined = [e for e in await events(su, w.org, "member.joined") if "scim" in (e["after"] or "")]
    assert joined and joined[0]["actor_label"] == "SCIM: Okta"
    again = await c.post(f"{w.base}/Users", json=body, headers={"Content-Type": SCIM_JSON})
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"


async def test_an_undelivered_welcome_is_shown_to_the_owner_who_sends_a_fresh_one(idp, su, smtp_sink, client_for):
    from portal.mail import queue as mail_queue

    w, c = idp, idp.idp
    smtp_sink.refuse.update({"bounced@example.test", "chose@example.test"})
    for address in ("bounced@example.test", "chose@example.test"):
        r = await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": address}, headers={"Content-Type": SCIM_JSON})
        assert r.status_code == 201
    await mail_queue.drain()
    # one of them chose a password meanwhile (another way in): no new welcome, and not counted
    await su.execute("UPDATE app_user SET password_hash = 'chosen' WHERE email = 'chose@example.test'")
    owner = await client_for(w.org.owner)
    page = await owner.get(f"/orgs/{w.org.slug}/scim")
    assert "Welcome emails not delivered" in page.text and "bounced@example.test" in page.text and "refused the recipient" in page.text
    smtp_sink.refuse.clear()
    done = await owner.post(f"/orgs/{w.org.slug}/scim/retry-welcomes")
    assert done.status_code == 303
    assert "on its way to 1 person" in (await owner.get(done.headers["location"])).text
    await mail_queue.drain()
    [mail] = await smtp_sink.wait_for(1)
    assert mail["To"] == "bounced@example.test" and "/reset-password/" in mail.as_string()
    assert "Welcome emails not delivered" not in (await owner.get(f"/orgs/{w.org.slug}/scim")).text


async def test_an_account_of_another_org_just_gains_a_membership(idp, make_world, su):
    w, c = idp, idp.idp
    other = await make_world()
    person = other.users["member"]
    before = await su.fetchval("SELECT password_hash FROM app_user WHERE id = $1", person.id)
    r = await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": person.email}, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 201 and EXT not in r.json()  # the default role: member
    assert await su.fetchval("SELECT password_hash FROM app_user WHERE id = $1", person.id) == before


async def test_deactivating_suspends_reactivating_restores_delete_removes(idp, su, client_for):
    w, c = idp, idp.idp
    member = w.users["member"]
    browser = await client_for(member)
    mid = str(w.memberships["member"])
    off = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}  # as Entra sends it
    r = await c.patch(f"{w.base}/Users/{mid}", json=off, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    assert (await browser.get(f"/orgs/{w.org.slug}/agents")).status_code == 404  # the very next request
    on = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]}  # as Okta sends it
    assert (await c.patch(f"{w.base}/Users/{mid}", json=on, headers={"Content-Type": SCIM_JSON})).json()["active"] is True
    assert (await browser.get(f"/orgs/{w.org.slug}/agents")).status_code == 200
    actions = [e["action"] for e in await events(su, w.org) if e["actor_label"] == "SCIM: Okta"]
    assert "member.suspended" in actions and "member.reactivated" in actions
    assert (await c.delete(f"{w.base}/Users/{mid}")).status_code == 204
    assert await su.fetchval("SELECT count(*) FROM membership WHERE id = $1", w.memberships["member"]) == 0
    assert await su.fetchval("SELECT count(*) FROM app_user WHERE id = $1", member.id) == 1  # never the account


async def test_the_owner_is_never_suspended_demoted_or_removed_through_scim(idp, su):
    w, c = idp, idp.idp
    oid = str(w.memberships["owner"])
    for op in ({"op": "replace", "path": "active", "value": False}, {"op": "add", "path": f"{EXT}:role", "value": "member"}):
        r = await c.patch(f"{w.base}/Users/{oid}", json={"schemas": [PATCH], "Operations": [op]}, headers={"Content-Type": SCIM_JSON})
        assert r.status_code in (200, 409), r.text
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", w.memberships["owner"]) == "owner"
    assert await su.fetchval("SELECT suspended_at FROM membership WHERE id = $1", w.memberships["owner"]) is None
    assert (await c.delete(f"{w.base}/Users/{oid}")).status_code == 409


GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def test_groups_are_teams_with_members_added_and_removed_as_idps_send_them(idp, su, make_world, client_for):
    w, c = idp, idp.idp
    other = await make_world()
    a, b = str(w.memberships["member"]), str(w.memberships["billing_admin"])
    r = await c.post(f"{w.base}/Groups", json={"schemas": [GROUP], "displayName": "On call", "externalId": "g-1",
                                               "members": [{"value": a}, {"value": str(other.memberships["member"])}, {"value": "fake-member-id"}]},
                     headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 201, r.text
    group = r.json()
    assert [m["value"] for m in group["members"]] == [a]  # another org's member and unknown ids are ignored
    gid = group["id"]
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": b, "display": "Bilal"}]}]}  # Okta
    assert {m["value"] for m in (await c.patch(f"{w.base}/Groups/{gid}", json=add, headers={"Content-Type": SCIM_JSON})).json()["members"]} == {a, b}
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{a}"]'}]}
    assert [m["value"] for m in (await c.patch(f"{w.base}/Groups/{gid}", json=remove, headers={"Content-Type": SCIM_JSON})).json()["members"]] == [b]
    rename = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "displayName", "value": "Platform on call"}]}  # Entra
    assert (await c.patch(f"{w.base}/Groups/{gid}", json=rename, headers={"Content-Type": SCIM_JSON})).json()["displayName"] == "Platform on call"
    found = (await c.get(f"{w.base}/Groups", params={"filter": 'displayName eq "platform on call"'})).json()
    assert found["totalResults"] == 1
    owner = await client_for(w.users["owner"])
    team_page = (await owner.get(f"/orgs/{w.org.slug}/teams/{gid}")).text
    assert "Platform on call" in team_page and w.users["billing_admin"].email in team_page
    assert {e["action"] for e in await events(su, w.org) if e["actor_label"] == "SCIM: Okta"} >= {
        "team.created", "team.member_added", "team.member_removed", "team.updated"}
    assert (await c.delete(f"{w.base}/Groups/{gid}")).status_code == 204
    assert await su.fetchval("SELECT count(*) FROM team WHERE id = $1", gid) == 0


async def test_a_new_username_only_for_an_account_this_org_provisioned_and_no_other_shares(idp, make_world, su):
    w, c = idp, idp.idp
    made = (await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": "temp@example.test"}, headers={"Content-Type": SCIM_JSON})).json()
    rename = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "final@example.test"}]}
    r = await c.patch(f"{w.base}/Users/{made['id']}", json=rename, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 200 and r.json()["userName"] == "final@example.test"
    # a member the org did not provision, or one another org shares: the sign-in email stays
    mine = str(w.memberships["member"])
    assert (await c.patch(f"{w.base}/Users/{mine}", json=rename, headers={"Content-Type": SCIM_JSON})).status_code == 409
    other = await make_world()
    shared = (await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": other.users["member"].email},
                           headers={"Content-Type": SCIM_JSON})).json()
    await su.execute("UPDATE membership SET scim_managed = true WHERE id = $1", shared["id"])
    again = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "hijack@example.test"}]}
    assert (await c.patch(f"{w.base}/Users/{shared['id']}", json=again, headers={"Content-Type": SCIM_JSON})).status_code == 409
    assert await su.fetchval("SELECT email FROM app_user WHERE id = $1", other.users["member"].id) == other.users["member"].email


async def test_an_identity_provider_s_day(idp, su, client_for):
    """What an IdP does over a morning: 200 people and 10 groups provisioned, people renamed and
    moved between groups, 20 deactivated, 5 deleted. Afterwards the members page, the teams and the
    audit log say the same thing SCIM does."""
    w, c = idp, idp.idp
    await su.execute("UPDATE billing_settings SET seat_limit = 500 WHERE org_id = $1", w.org.id)
    h = {"Content-Type": SCIM_JSON}
    people = []
    for i in range(200):
        r = await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": f"p{i:03}@idp.example.test", "externalId": f"okta-{i}",
                                                 "displayName": f"Person {i:03}"}, headers=h)
        assert r.status_code == 201, r.text
        people.append(r.json()["id"])
    groups = []
    for g in range(10):
        r = await c.post(f"{w.base}/Groups", json={"schemas": [GROUP], "displayName": f"Group {g}",
                                                  "members": [{"value": p} for p in people[g * 20:(g + 1) * 20]]}, headers=h)
        assert r.status_code == 201, r.text
        groups.append(r.json()["id"])
    for i in range(10):  # renamed
        r = await c.patch(f"{w.base}/Users/{people[i]}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": f"Renamed {i}"}]}, headers=h)
        assert r.status_code == 200
    for i in range(20, 30):  # moved from group 1 to group 2
        for gid, op in ((groups[1], {"op": "remove", "path": f'members[value eq "{people[i]}"]'}),
                        (groups[2], {"op": "add", "path": "members", "value": [{"value": people[i]}]})):
            assert (await c.patch(f"{w.base}/Groups/{gid}", json={"schemas": [PATCH], "Operations": [op]}, headers=h)).status_code == 200
    for i in range(100, 120):  # deactivated
        assert (await c.patch(f"{w.base}/Users/{people[i]}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}, headers=h)).status_code == 200
    for i in range(195, 200):  # deleted
        assert (await c.delete(f"{w.base}/Users/{people[i]}")).status_code == 204

    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND scim_managed", w.org.id) == 195
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND suspended_at IS NOT NULL", w.org.id) == 20
    assert (await c.get(f"{w.base}/Users", params={"filter": "active eq false"})).json()["totalResults"] == 20
    sizes = [await su.fetchval("SELECT count(*) FROM team_member WHERE team_id = $1", g) for g in groups]
    assert sizes[1] == 10 and sizes[2] == 30 and sizes[9] == 15  # group 9 lost the 5 deleted people
    owner = await client_for(w.users["owner"])
    page = (await owner.get(f"/orgs/{w.org.slug}/members", params={"q": "p100@idp"})).text
    assert "Suspended" in page and "managed by SCIM" in page
    team = (await owner.get(f"/orgs/{w.org.slug}/teams/{groups[2]}")).text
    assert all(f"p{i:03}@idp.example.test" in team for i in range(20, 30))
    counted = {a: n for a, n in await su.fetch(
        "SELECT action, count(*) AS n FROM audit_event WHERE org_id = $1 AND actor_label = 'SCIM: Okta' GROUP BY action", w.org.id)}
    assert counted["member.joined"] == 200 and counted["member.suspended"] == 20 and counted["member.removed"] == 5
    assert counted["team.created"] == 10 and counted["team.member_removed"] == 10


async def test_the_seat_limit_holds_for_the_identity_provider_too(idp, su):
    w, c = idp, idp.idp
    members = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", w.org.id)
    await su.execute("UPDATE billing_settings SET seat_limit = $2 WHERE org_id = $1", w.org.id, members)
    await su.execute("DELETE FROM invite WHERE org_id = $1", w.org.id)
    r = await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": "one.too.many@example.test"}, headers={"Content-Type": SCIM_JSON})
    assert r.status_code == 409 and "seats" in r.json()["detail"]
    assert await su.fetchval("SELECT count(*) FROM app_user WHERE email = 'one.too.many@example.test'") == 0  # nothing half-made


async def test_another_org_s_token_writes_nothing_and_a_bearer_opens_no_page(idp, make_world, su, snapshot, app):
    w = idp
    other = await make_world()
    _, theirs = await add_api_token(su, other.org, "scim")
    before = await snapshot(w.org.id)
    c = Client(app)
    h = {**bearer(theirs), "Content-Type": SCIM_JSON}
    mid = str(w.memberships["member"])
    attempts = [("POST", "/Users", {"schemas": [USER], "userName": "intruder@example.test"}),
                ("PATCH", f"/Users/{mid}", {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}),
                ("DELETE", f"/Users/{mid}", None), ("POST", "/Groups", {"schemas": [GROUP], "displayName": "Intruders"})]
    for method, path, body in attempts:
        r = await c.http.request(method, w.base + path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.status_code)
    assert await snapshot(w.org.id) == before
    assert await su.fetchval("SELECT count(*) FROM app_user WHERE email = 'intruder@example.test'") == 0
    page = await c.http.get(f"/orgs/{w.org.slug}/members", headers=bearer(theirs))
    assert page.status_code == 303 and page.headers["location"].startswith("/login")  # a token is no session
    await c.aclose()


async def test_an_idp_change_and_a_person_s_change_to_one_member_queue_on_the_same_locks(idp, su, client_for, database):
    """The SCIM write and the members page's role change both lock the org row, then the
    membership: held behind a third transaction, both wait; released, both apply in turn, both are
    audited, and the member ends with the later one's role."""
    from tests.concurrency import wait_until_blocked_on_lock

    w, c = idp, idp.idp
    owner = await client_for(w.users["owner"])
    mid = w.memberships["member"]
    holder = await database.cluster.superuser_connect()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM membership WHERE id = $1 FOR UPDATE", mid)
        scim = asyncio.create_task(c.patch(f"{w.base}/Users/{mid}", headers={"Content-Type": SCIM_JSON}, json={
            "schemas": [PATCH], "Operations": [{"op": "add", "path": f"{EXT}:role", "value": "compliance_officer"}]}))
        await wait_until_blocked_on_lock(su)
        person = asyncio.create_task(owner.post(f"/orgs/{w.org.slug}/members/{mid}/role", {"role": "billing_admin"}))
        await wait_until_blocked_on_lock(su, count=2)
        await tx.rollback()
        r_scim, r_person = await scim, await person
    finally:
        await holder.close()
    assert r_scim.status_code == 200 and r_person.status_code in (200, 303), (r_scim.text[:200], r_person.status_code)
    changes = [e for e in await events(su, w.org, "member.role_changed") if e["target_id"] == str(mid)]
    assert len(changes) == 2
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", mid) == "billing_admin"  # the person's, applied second


async def test_from_a_security_review_no_account_or_owner_is_taken_over(idp, make_user, su, client_for):
    w, c = idp, idp.idp
    h = {"Content-Type": SCIM_JSON}
    victim = await make_user()  # an account of no org: the IdP may add it, never rename it
    made = (await c.post(f"{w.base}/Users", json={"schemas": [USER], "userName": victim.email}, headers=h)).json()
    steal = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "userName", "value": "attacker@evil.example"}]}
    assert (await c.patch(f"{w.base}/Users/{made['id']}", json=steal, headers=h)).status_code == 409
    await su.execute("UPDATE membership SET scim_managed = true WHERE id = $1", w.memberships["owner"])
    assert (await c.patch(f"{w.base}/Users/{w.memberships['owner']}", json=steal, headers=h)).status_code == 409
    emails = await su.fetch("SELECT email FROM app_user WHERE id = ANY($1::uuid[])", [victim.id, w.org.owner.id])
    assert {r["email"] for r in emails} == {victim.email, w.org.owner.email}


async def test_a_put_that_leaves_out_role_or_active_changes_neither(idp, su):
    w, c = idp, idp.idp
    h = {"Content-Type": SCIM_JSON}
    mid = w.memberships["billing_admin"]
    user = (await c.get(f"{w.base}/Users/{mid}")).json()
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert (await c.patch(f"{w.base}/Users/{mid}", json=off, headers=h)).status_code == 200
    put = {"schemas": [USER], "userName": user["userName"], "displayName": "Bilal B."}  # Okta's PUT: no extension, no active
    r = await c.put(f"{w.base}/Users/{mid}", json=put, headers=h)
    assert r.status_code == 200, r.text
    row = await su.fetchrow("SELECT role, suspended_at FROM membership WHERE id = $1", mid)
    assert row["role"] == "billing_admin" and row["suspended_at"] is not None
    updated = (await events(su, w.org, "member.scim_updated"))[0]
    assert json.loads(updated["after"]) == {"displayName": "Bilal B."}


async def test_odd_values_are_a_400_never_a_500(idp):
    w, c = idp, idp.idp
    h = {"Content-Type": SCIM_JSON}
    for body in ({"schemas": [USER], "userName": "long@example.test", "displayName": "x" * 300},
                 {"schemas": [USER], "userName": "nul@example.test", "displayName": "a\u0000b"},
                 {"schemas": [USER], "userName": "not an email"}):
        r = await c.post(f"{w.base}/Users", json=body, headers=h)
        assert r.status_code == 400, (body, r.status_code, r.text[:200])
    r = await c.post(f"{w.base}/Groups", json={"schemas": [GROUP], "displayName": "g", "externalId": "e" * 300}, headers=h)
    assert r.status_code == 400
    assert (await c.get(f"{w.base}/Users", params={"startIndex": str(10**30)})).status_code in (200, 400)


async def test_what_a_resource_already_holds_never_blocks_a_deprovisioning(idp, su):
    """A member whose name an older rule let in with a C1 control character, a team named the
    same way: the IdP's suspend (a PATCH that changes only ``active``, so the name travels back
    unchanged) and a member added to the team still work; a new name with one is refused."""
    w, c = idp, idp.idp
    h = {"Content-Type": SCIM_JSON}
    await su.execute("UPDATE app_user SET name = 'Eve\u0085' WHERE id = $1", w.users["member"].id)
    await su.execute("UPDATE team SET name = 'Ops\u0085' WHERE org_id = $1 AND id = $2", w.org.id, w.team)
    mid = str(w.memberships["member"])
    off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    r = await c.patch(f"{w.base}/Users/{mid}", json=off, headers=h)
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    assert await su.fetchval("SELECT suspended_at IS NOT NULL FROM membership WHERE id = $1", w.memberships["member"])
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": str(w.target)}]}]}
    assert (await c.patch(f"{w.base}/Groups/{w.team}", json=add, headers=h)).status_code == 200
    rename = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Ops\u0086"}]}
    assert (await c.patch(f"{w.base}/Groups/{w.team}", json=rename, headers=h)).status_code == 400
    for name in ("Info\u001csep", "\ufeff", " \u3000 "):  # a separator str.split() would take for a space; blank as forms see it
        r = await c.post(f"{w.base}/Groups", json={"schemas": [GROUP], "displayName": name}, headers=h)
        assert r.status_code == 400 and r.json()["scimType"] == "invalidValue", (name, r.text)


async def test_a_custom_role_can_t_take_a_built_in_role_s_name(make_world, client_for):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    for name in ("billing_admin", "Billing admin", "MEMBER", "owner"):
        r = await owner.post(f"/orgs/{w.org.slug}/roles", {"name": name, "permissions": "audit.view"})
        assert r.status_code == 422 and "built-in role" in r.text, name


async def test_an_outage_is_a_scim_503_the_idp_retries_not_a_500(idp, monkeypatch):
    """PostgreSQL going away mid-request: a SCIM error body with 503 and Retry-After, as on every
    page, not scim2-server's 500 for an unexpected exception."""
    import asyncpg

    from portal.scim.service import OrgStorage

    async def gone(*args, **kwargs):
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(OrgStorage, "search", gone)
    r = await idp.idp.get(f"{idp.base}/Users")
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    assert r.headers["content-type"].startswith(SCIM_JSON) and r.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
