"""``/api/v1/orgs/{slug}/members`` and ``…/invites`` (SPEC §11, ``portal.api.people``): the
members and invites pages' rules through the API, with a token holding a custom role that
manages members; the audit events name the token; the owner is never demoted or removed; invites
are emailed after commit and no response carries their link; a token without the permission gets
403 and writes nothing."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from portal.mail import queue as mail_queue
from tests.factories import Client, add_api_token, add_role, bearer, events, give_role, text_of, unique
from tests.mail_sink import link_in

MANAGER_PERMISSIONS = ("members.manage", "resources.manage", "billing.manage", "audit.view", "export.use")



def state(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if k != "api_token"}  # a token's last use is bookkeeping


@pytest.fixture
async def people(make_world, su, app):
    """A world, and a program holding a token of a custom role that manages members (and holds
    every other grantable permission but leaving, so every built-in role is within it)."""
    w = await make_world()
    w.manager_role = await add_role(su, w.org.id, "People admin", MANAGER_PERMISSIONS)
    w.token_id, token = await add_api_token(su, w.org, "custom", custom_role_id=w.manager_role, name="HR sync")
    w.program = Client(app)
    w.program.http.headers.update(bearer(token))
    w.base = f"/api/v1/orgs/{w.org.slug}"
    yield w
    await w.program.aclose()


async def as_role(app, su, w, role: str) -> Client:
    _, token = await add_api_token(su, w.org, role)
    c = Client(app)
    c.http.headers.update(bearer(token))
    return c


# -- members ---------------------------------------------------------------------------------------


async def test_read_change_role_and_remove_members_through_the_api(people, su, client_for):
    w, c = people, people.program
    url = f"{w.base}/members/{w.target}"
    r = await c.get(url)
    assert r.status_code == 200, r.text
    target = r.json()
    assert target["id"] == str(w.target) and target["role"] == "member" and target["custom_role_id"] is None
    etag = r.headers["etag"]

    # a built-in role, with If-Match
    r = await c.request("PATCH", url, json={"role": "compliance_officer"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "compliance_officer" and r.headers["etag"] != etag
    stale = await c.request("PATCH", url, json={"role": "billing_admin"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", w.target) == "compliance_officer"

    # a custom role, by its id (as the page's role menu posts it)
    r = await c.request("PATCH", url, json={"role": str(w.role)}, headers={"If-Match": r.headers["etag"]})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["role"] == "custom" and changed["custom_role_id"] == str(w.role) and changed["custom_role_name"]
    assert (await c.get(url)).json() == changed

    event = (await events(su, w.org, "member.role_changed"))[-1]
    assert event["actor_token_id"] == w.token_id and event["actor_label"] == "API token “HR sync”"
    assert event["actor_id"] == w.org.owner.id and event["target_id"] == str(w.target)
    assert json.loads(event["after"]) == {"role": "custom", "custom_role_id": str(w.role), "role_name": changed["custom_role_name"]}

    owner = await client_for(w.org.owner)
    page = text_of(await owner.get(f"/orgs/{w.org.slug}/members"))
    assert changed["email"] in page and changed["custom_role_name"] in page

    assert (await c.request("DELETE", url)).status_code == 204
    assert (await c.get(url)).status_code == 404
    assert (await c.request("DELETE", url)).status_code == 404
    removed = (await events(su, w.org, "member.removed"))[-1]
    assert removed["actor_token_id"] == w.token_id and removed["actor_label"] == "API token “HR sync”"
    assert changed["email"] not in text_of(await owner.get(f"/orgs/{w.org.slug}/members"))


async def test_the_owner_is_never_demoted_or_removed_and_bad_roles_are_refused(people, su, snapshot):
    w, c = people, people.program
    owner_url = f"{w.base}/members/{w.memberships['owner']}"
    before = state(await snapshot(w.org.id))
    demote = await c.request("PATCH", owner_url, json={"role": "member"})
    assert demote.status_code == 409 and "owner" in demote.json()["detail"]
    remove = await c.request("DELETE", owner_url)
    assert remove.status_code == 409 and "owner" in remove.json()["detail"]

    url = f"{w.base}/members/{w.target}"
    for role in ("owner", "superuser", "custom", "00000000-0000-0000-0000-000000000000", "member\u0000", "x" * 100):
        r = await c.request("PATCH", url, json={"role": role})
        assert r.status_code == 422 and r.json()["errors"] == {"role": r.json()["errors"]["role"]}, (role, r.text)
    for body in ({}, {"role": ""}, {"role": 7}, {"role": "x" * 101}):
        assert (await c.request("PATCH", url, json=body)).status_code == 400, body
    assert (await c.get(f"{w.base}/members/not-an-id")).status_code == 404
    assert (await c.request("PATCH", f"{w.base}/members/{w.memberships['owner']}x", json={"role": "member"})).status_code == 404
    assert state(await snapshot(w.org.id)) == before


async def test_containment_a_role_beyond_the_token_s_is_refused(make_world, su, app, snapshot):
    """A token that manages members but lacks resources.manage can't act on a plain member (their
    role has it), nor grant a role it lacks: 403, as on the members page."""
    w = await make_world()
    narrow = await add_role(su, w.org.id, "Narrow", ("members.manage", "billing.manage"))
    _, token = await add_api_token(su, w.org, "custom", custom_role_id=narrow)
    c = Client(app)
    c.http.headers.update(bearer(token))
    before = state(await snapshot(w.org.id))
    base = f"/api/v1/orgs/{w.org.slug}"
    assert (await c.request("PATCH", f"{base}/members/{w.target}", json={"role": "billing_admin"})).status_code == 403
    assert (await c.request("DELETE", f"{base}/members/{w.target}")).status_code == 403
    billing = f"{base}/members/{w.memberships['billing_admin']}"
    assert (await c.request("PATCH", billing, json={"role": "member"})).status_code == 403  # member has resources.manage
    assert (await c.request("DELETE", f"{base}/invites/{w.invite}")).status_code == 403
    assert state(await snapshot(w.org.id)) == before
    await c.aclose()


async def test_a_token_cannot_act_on_the_person_who_created_it(make_world, su, app, snapshot):
    """As on the members page, where nobody changes their own role or removes themselves: a
    token of a member who manages members can't demote or remove that member."""
    w = await make_world()
    role = await add_role(su, w.org.id, "Managers", MANAGER_PERMISSIONS)
    await give_role(su, w.org.id, w.memberships["compliance_officer"], role)
    _, token = await add_api_token(su, w.org, "custom", custom_role_id=role, created_by=w.users["compliance_officer"])
    c = Client(app)
    c.http.headers.update(bearer(token))
    url = f"/api/v1/orgs/{w.org.slug}/members/{w.memberships['compliance_officer']}"
    before = state(await snapshot(w.org.id))
    r = await c.request("PATCH", url, json={"role": "member"})
    assert r.status_code == 409 and "your own role" in r.json()["detail"]
    r = await c.request("DELETE", url)
    assert r.status_code == 409 and "remove yourself" in r.json()["detail"]
    assert state(await snapshot(w.org.id)) == before
    r = await c.request("PATCH", f"/api/v1/orgs/{w.org.slug}/members/{w.target}", json={"role": "billing_admin"})
    assert r.status_code == 200  # anyone else within its role: as usual
    await c.aclose()


async def test_members_list_is_a_keyset_page_with_search(people, su, make_member):
    w, c = people, people.program
    tag = unique("pager")
    for i in range(7):
        user = await make_member(w.org, "member")
        await su.execute("UPDATE app_user SET name = $2 WHERE id = $1", user.id, f"{tag} {i}")
    total = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", w.org.id)
    seen, url = [], f"{w.base}/members?limit=3"
    while url:
        r = await c.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == total
        seen += [m["id"] for m in body["items"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == total

    found = (await c.get(f"{w.base}/members", params={"q": tag.upper(), "limit": 5})).json()
    assert found["total"] == 7 and len(found["items"]) == 5 and "q=" in found["next"]
    rest = (await c.get(found["next"])).json()
    assert sorted(m["name"] for m in found["items"] + rest["items"]) == [f"{tag} {i}" for i in range(7)] and rest["next"] is None
    assert (await c.get(f"{w.base}/members?limit=0")).status_code == 400
    assert (await c.get(f"{w.base}/members?after=%00junk&q=%00")).status_code == 200


async def test_a_token_without_members_manage_gets_403_and_writes_nothing(make_world, su, app, snapshot):
    w = await make_world()
    base = f"/api/v1/orgs/{w.org.slug}"
    for role in ("member", "billing_admin", "compliance_officer"):
        c = await as_role(app, su, w, role)
        assert (await c.get(f"{base}/members")).status_code == 200  # org.view: anyone's
        assert (await c.get(f"{base}/members/{w.target}")).status_code == 200
        before = state(await snapshot(w.org.id))
        for method, path, body in (
            ("PATCH", f"members/{w.target}", {"role": "billing_admin"}),
            ("DELETE", f"members/{w.target}", None),
            ("GET", "invites", None),
            ("POST", "invites", {"email": "new@example.test", "role": "member"}),
            ("POST", f"invites/{w.invite}/resend", None),
            ("DELETE", f"invites/{w.invite}", None),
        ):
            r = await c.request(method, f"{base}/{path}", json=body)
            assert r.status_code == 403, (role, method, path, r.status_code)
        assert state(await snapshot(w.org.id)) == before, role
        await c.aclose()


# -- invites ---------------------------------------------------------------------------------------


async def test_invite_is_emailed_after_commit_resent_and_revoked(people, su, smtp_sink, client_for, app):
    w, c = people, people.program
    r = await c.request("POST", f"{w.base}/invites", json={"email": "New.Hire@Example.test", "role": "billing_admin"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["email"] == "new.hire@example.test" and created["role"] == "billing_admin" and created["status"] == "sending"
    await mail_queue.drain()
    [message] = await smtp_sink.wait_for(1)
    assert message["To"] == "new.hire@example.test"
    link = link_in(message)
    token = link.rsplit("/", 1)[1]
    assert token not in r.text and "/invites/" not in r.text  # the link is in the email alone

    listed = (await c.get(f"{w.base}/invites")).json()
    mine = next(i for i in listed["items"] if i["id"] == created["id"])
    assert mine["status"] == "sent" and mine["invited_by_email"] == w.org.owner.email and listed["next"] is None
    assert token not in json.dumps(listed)
    event = (await events(su, w.org, "invite.created"))[-1]
    assert event["actor_token_id"] == w.token_id and event["actor_label"] == "API token “HR sync”"
    assert event["target_id"] == created["id"]

    # the invites page shows it
    owner = await client_for(w.org.owner)
    assert "new.hire@example.test" in text_of(await owner.get(f"/orgs/{w.org.slug}/invites"))

    key = {"Idempotency-Key": "resend-1"}
    r = await c.request("POST", f"{w.base}/invites/{created['id']}/resend", headers=key)
    assert r.status_code == 200, r.text
    retried = await c.request("POST", f"{w.base}/invites/{created['id']}/resend", headers=key)  # a retry: the same answer, no new mail
    assert retried.status_code == 200 and retried.json() == r.json() and retried.headers["idempotent-replayed"] == "true"
    resent = r.json()
    assert resent["id"] != created["id"] and resent["email"] == created["email"] and resent["role"] == "billing_admin"
    await mail_queue.drain()
    messages = await smtp_sink.wait_for(2)
    new_link = link_in(messages[1])
    assert new_link != link and new_link.rsplit("/", 1)[1] not in r.text
    assert (await c.request("POST", f"{w.base}/invites/{created['id']}/resend")).status_code == 409  # replaced already
    assert (await events(su, w.org, "invite.resent"))[-1]["actor_token_id"] == w.token_id

    assert (await c.request("DELETE", f"{w.base}/invites/{resent['id']}")).status_code == 204
    assert (await c.request("DELETE", f"{w.base}/invites/{resent['id']}")).status_code == 409
    assert resent["id"] not in {i["id"] for i in (await c.get(f"{w.base}/invites")).json()["items"]}
    revoked = (await events(su, w.org, "invite.revoked"))[-1]
    assert revoked["actor_token_id"] == w.token_id and revoked["target_id"] == resent["id"]
    visitor = Client(app)
    assert (await visitor.get(new_link)).status_code == 404  # the revoked link is dead
    await visitor.aclose()
    assert len(smtp_sink.messages) == 2


async def test_invite_creation_honours_idempotency_key_and_refuses_like_the_page(people, su, smtp_sink, snapshot):
    w, c = people, people.program
    body = {"email": "once@example.test", "role": "member"}
    first = await c.request("POST", f"{w.base}/invites", json=body, headers={"Idempotency-Key": "invite-1"})
    again = await c.request("POST", f"{w.base}/invites", json=body, headers={"Idempotency-Key": "invite-1"})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await c.request("POST", f"{w.base}/invites", json={**body, "role": "billing_admin"}, headers={"Idempotency-Key": "invite-1"})
    assert other.status_code == 409
    await mail_queue.drain()
    assert len(smtp_sink.messages) == 1
    assert await su.fetchval("SELECT count(*) FROM invite WHERE org_id = $1 AND email = 'once@example.test'", w.org.id) == 1

    before = state(await snapshot(w.org.id))
    member_email = await su.fetchval("SELECT u.email FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.id = $1", w.target)
    for body, field in (
        ({"email": "once@example.test", "role": "member"}, "email"),  # already has a pending invite
        ({"email": member_email, "role": "member"}, "email"),  # already a member
        ({"email": "new@example.test", "role": "owner"}, "role"),
        ({"email": "new@example.test", "role": "superuser"}, "role"),
        ({"email": "not an email", "role": "member"}, "email"),
        ({"email": "nul\u0000@example.test", "role": "member"}, "email"),
        ({"email": "x" * 300 + "@example.test", "role": "member"}, "email"),
    ):
        r = await c.request("POST", f"{w.base}/invites", json=body)
        assert r.status_code == 422 and field in r.json()["errors"], (body, r.status_code, r.text)
    for body in ({"email": "a@example.test"}, {"role": "member"}, {"email": "", "role": "member"}, {"email": 5, "role": "member"}):
        assert (await c.request("POST", f"{w.base}/invites", json=body)).status_code == 400, body
    assert (await c.request("POST", f"{w.base}/invites/not-an-id/resend")).status_code == 404
    assert (await c.request("DELETE", f"{w.base}/invites/00000000-0000-0000-0000-000000000000")).status_code == 404
    assert state(await snapshot(w.org.id)) == before
    await mail_queue.drain()
    assert len(smtp_sink.messages) == 1


async def test_invites_list_is_a_keyset_page(people, su, make_invite):
    w, c = people, people.program
    for i in range(5):
        await make_invite(w.org, f"{unique('page')}@example.test")
    total = await su.fetchval(
        "SELECT count(*) FROM invite WHERE org_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND superseded_at IS NULL", w.org.id
    )
    seen, url = [], f"{w.base}/invites?limit=2"
    while url:
        body = (await c.get(url)).json()
        seen += [(datetime.fromisoformat(i["created_at"]), i["id"]) for i in body["items"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == total == 6
    assert seen == sorted(seen, reverse=True)  # newest first
    assert not re.search(r"token|/invites/[A-Za-z0-9_-]{43}", json.dumps((await c.get(f"{w.base}/invites")).json()))
