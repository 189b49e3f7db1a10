"""Membership lifecycle rules, positive and negative, for each of the four roles: the members page,
role change, removal, leave, ownership transfer, their audit events and their refusals."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import html

from tests.factories import NON_OWNER, PASSWORD, ROLES, events, membership_id, owner_count, roles_of, text_of as _text_of



GENERIC_404 = "We couldn't find that page"


def text_of(r) -> str:
    return html.unescape(_text_of(r))


def main_html(r) -> str:
    """The page without per-client tokens, for comparing 404 pages."""
    html = re.sub(r'name="_csrf_token" value="[^"]+"', "", r.text)
    return re.sub(r"(X-CSRFToken&#34;: &#34;|X-CSRFToken\": \")[^&\"]+", "TOKEN", html)


# -- members page --------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
async def test_every_role_sees_the_members_page(crew, client_for, role):
    c = await client_for(crew.users[role])
    r = await c.get(f"/orgs/{crew.org.slug}/members")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store" and "HX-Request" in r.headers["vary"]
    text = text_of(r)
    for member_role, user in crew.users.items():
        assert user.name in text and user.email in text
    for label in ("Owner", "Billing admin", "Compliance officer", "Member"):
        assert label in text
    assert "4 members" in text
    assert re.search(r"\d{4}-\d{2}-\d{2}", text)  # joined date
    manage = role == "owner"
    assert ('/role"' in r.text) is manage
    assert ("/remove" in r.text) is manage
    assert ('aria-label="Role of' in r.text) is manage


async def test_owner_gets_no_controls_on_their_own_row(crew, client_for):
    c = await client_for(crew.org.owner)
    r = await c.get(f"/orgs/{crew.org.slug}/members")
    assert f"/members/{crew.memberships['owner']}/role" not in r.text
    assert f"/members/{crew.memberships['owner']}/remove" not in r.text
    for role in NON_OWNER:
        assert f"/members/{crew.memberships[role]}/role" in r.text and f"/members/{crew.memberships[role]}/remove" in r.text


async def test_members_page_is_404_for_outsiders_and_redirects_anonymous(crew, client_for, make_user, client):
    outsider = await client_for(await make_user())
    r = await outsider.get(f"/orgs/{crew.org.slug}/members")
    assert r.status_code == 404
    r = await client.get(f"/orgs/{crew.org.slug}/members")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_search_matches_name_or_email_case_insensitively(make_org, make_member, make_user, client_for):
    org = await make_org()
    ada = await make_member(org, "member", await make_user(email=f"ada.{uuid.uuid4().hex[:6]}@lovelace.test", name="Ada Lovelace"))
    alan = await make_member(org, "billing_admin", await make_user(email=f"alan.{uuid.uuid4().hex[:6]}@turing.test", name="Alan Turing"))
    pct = await make_member(org, "member", await make_user(email=f"pct.{uuid.uuid4().hex[:6]}@example.test", name="100% Percent_Sign"))
    c = await client_for(org.owner)
    base = f"/orgs/{org.slug}/members"
    r = await c.get(base, params={"q": "LOVELACE"})
    assert ada.email in r.text and alan.email not in r.text and "1 member matches" in text_of(r)
    r = await c.get(base, params={"q": "turing.test"})
    assert alan.email in r.text and ada.email not in r.text
    # LIKE wildcards are literal
    r = await c.get(base, params={"q": "%"})
    assert pct.email in r.text and ada.email not in r.text
    r = await c.get(base, params={"q": "_"})
    assert pct.email in r.text and ada.email not in r.text
    r = await c.get(base, params={"q": "nobody-at-all"})
    assert r.status_code == 200 and "No member matches" in text_of(r)


@pytest.mark.parametrize("q", ["\x00", "a\x00b", "'; DROP TABLE membership; --", "é" * 500, "\\", "\ud800".encode("utf-8", "surrogatepass").decode("latin-1")])
async def test_search_never_fails(crew, client_for, q):
    c = await client_for(crew.users["member"])
    r = await c.get(f"/orgs/{crew.org.slug}/members", params={"q": q})
    assert r.status_code == 200


async def test_htmx_search_returns_the_list_fragment_only(crew, client_for):
    c = await client_for(crew.users["member"])
    r = await c.get(
        f"/orgs/{crew.org.slug}/members", params={"q": crew.users["billing_admin"].email},
        headers={"HX-Request": "true", "HX-Target": "member-list"},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="member-list">') and "<html" not in r.text
    assert crew.users["billing_admin"].email in r.text and crew.users["member"].email not in r.text
    # a history restore gets the whole page
    r = await c.get(
        f"/orgs/{crew.org.slug}/members",
        headers={"HX-Request": "true", "HX-Target": "member-list", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in r.text


async def test_keyset_pagination_walks_every_member_once_both_ways(make_org, su, client_for):
    from portal.members.service import PAGE_SIZE

    org = await make_org()
    await su.execute(
        """WITH u AS (INSERT INTO app_user (email, name, password_hash)
                      SELECT 'p' || g || '-' || $2 || '@example.test', 'Person ' || g, 'x' FROM generate_series(1, $1) g RETURNING id)
           INSERT INTO membership (org_id, user_id, role, created_at)
           SELECT $3, id, 'member', now() - interval '1 day' FROM u""",  # identical timestamps: the id breaks ties
        2 * PAGE_SIZE + 7, uuid.uuid4().hex[:8], org.id,
    )
    c = await client_for(org.owner)
    base = f"/orgs/{org.slug}/members"
    seen, url, pages = [], base, []
    while url:
        r = await c.get(url)
        assert r.status_code == 200
        ids = re.findall(r'<tr id="member-([0-9a-f-]+)"', r.text)
        pages.append(ids)
        seen += ids
        nxt = re.search(r'rel="next" href="([^"]+)"', r.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert [len(p) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 8]
    assert len(seen) == len(set(seen)) == 2 * PAGE_SIZE + 8
    assert f"{2 * PAGE_SIZE + 8:,} members" in text_of(r)
    # and back
    prev = re.search(r'rel="prev" href="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    r = await c.get(prev)
    assert re.findall(r'<tr id="member-([0-9a-f-]+)"', r.text) == pages[1]
    prev = re.search(r'rel="prev" href="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    r = await c.get(prev)
    assert re.findall(r'<tr id="member-([0-9a-f-]+)"', r.text) == pages[0]
    assert 'rel="prev"' not in r.text


@pytest.mark.parametrize("cursor", ["garbage", "1.2", "99999999999999999999." + "0" * 32, "1." + "g" * 32, "\x00", "9" * 5000])
async def test_malformed_cursors_start_at_the_beginning(crew, client_for, cursor):
    c = await client_for(crew.users["member"])
    for key in ("after", "before"):
        r = await c.get(f"/orgs/{crew.org.slug}/members", params={key: cursor})
        assert r.status_code == 200 and crew.users["owner"].email in r.text


# -- role change ---------------------------------------------------------------------------------
@pytest.mark.parametrize("target", NON_OWNER)
@pytest.mark.parametrize("new_role", NON_OWNER)
async def test_owner_changes_any_non_owner_to_any_non_owner_role(crew, client_for, su, target, new_role):
    c = await client_for(crew.org.owner)
    mid = crew.memberships[target]
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/role", {"role": new_role})
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{crew.org.slug}/members"
    assert (await roles_of(su, crew.org))[mid] == new_role
    evs = await events(su, crew.org, "member.role_changed")
    if target == new_role:
        assert evs == []  # nothing changed, nothing recorded
    else:
        assert len(evs) == 1
        ev = evs[0]
        assert ev["actor_id"] == crew.org.owner.id and ev["target_id"] == str(mid)
        assert '"role": "%s"' % target in ev["before"] and '"role": "%s"' % new_role in ev["after"]
        assert crew.users[target].email in ev["target_label"] and ev["ip"]
    page = await c.get(r.headers["location"])
    assert crew.users[target].name in text_of(page) and ("is now" in text_of(page) or "already is" in text_of(page))


async def test_role_change_returns_to_the_page_it_came_from_only(crew, client_for):
    c = await client_for(crew.org.owner)
    url = f"/orgs/{crew.org.slug}/members/{crew.memberships['member']}/role"
    back = f"/orgs/{crew.org.slug}/members?q=abc&after=x"
    r = await c.post(url, {"role": "billing_admin", "next": back})
    assert r.headers["location"] == back
    for evil in ("https://evil.test/", "//evil.test", f"/orgs/{crew.org.slug}/settings", "/orgs/other/members"):
        r = await c.post(url, {"role": "member", "next": evil})
        assert r.headers["location"] == f"/orgs/{crew.org.slug}/members"


async def test_role_change_with_htmx_swaps_the_row(crew, client_for, su):
    c = await client_for(crew.org.owner)
    mid = crew.memberships["member"]
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/role", {"role": "compliance_officer"}, htmx=True)
    assert r.status_code == 200
    body = r.text.strip()
    assert body.startswith(f'<tr id="member-{mid}">')
    assert '<option value="compliance_officer" selected>' in body
    assert 'hx-swap-oob="true"' in body and "is now Compliance officer" in body
    assert r.headers["vary"] == "HX-Request"
    assert (await roles_of(su, crew.org))[mid] == "compliance_officer"


@pytest.mark.parametrize("actor", NON_OWNER)
async def test_non_owners_cannot_change_roles(crew, client_for, snapshot, actor):
    """SECURITY 10: not another's role, not their own, not to owner, not the owner's."""
    c = await client_for(crew.users[actor])
    before = await snapshot(crew.org.id)
    attempts = [
        (crew.memberships["member" if actor != "member" else "billing_admin"], "compliance_officer"),
        (crew.memberships[actor], "owner"),
        (crew.memberships[actor], "billing_admin" if actor != "billing_admin" else "member"),
        (crew.memberships["owner"], "member"),
    ]
    for mid, role in attempts:
        for htmx in (False, True):
            r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/role", {"role": role}, htmx=htmx)
            assert r.status_code == 403, (mid, role, htmx)
            assert "doesn't allow" in text_of(r)
    assert await snapshot(crew.org.id) == before


async def test_owner_cannot_change_own_role_or_grant_owner(crew, client_for, snapshot):
    c = await client_for(crew.org.owner)
    before = await snapshot(crew.org.id)
    base = f"/orgs/{crew.org.slug}/members"
    r = await c.post(f"{base}/{crew.memberships['owner']}/role", {"role": "member"})
    assert r.status_code == 409 and "can't change your own role" in text_of(r)
    r = await c.post(f"{base}/{crew.memberships['member']}/role", {"role": "owner"})
    assert r.status_code == 422 and "Transfer ownership" in text_of(r)
    for bad in ("", "admin", "OWNER", "Owner", "member ", "x" * 5000, "\x00member"):
        r = await c.post(f"{base}/{crew.memberships['member']}/role", {"role": bad})
        # read_form drops NULs and field() trims: "\x00member" and "member " are a valid no-op
        assert r.status_code in (422, 303), bad
        if r.status_code == 422:
            assert "Choose a role from the list." in text_of(r)
    assert await snapshot(crew.org.id) == before


async def test_htmx_refusal_redraws_the_row_as_it_is(crew, client_for):
    c = await client_for(crew.org.owner)
    mid = crew.memberships["billing_admin"]
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/role", {"role": "owner"}, htmx=True)
    assert r.status_code == 422
    assert r.text.strip().startswith(f'<tr id="member-{mid}">')
    assert '<option value="billing_admin" selected>' in r.text and "flash-error" in r.text


async def test_role_change_ids_of_other_orgs_or_malformed_are_404_like_any_page(crew, make_org, make_member, su, client_for, snapshot):
    other = await make_org()
    stranger = await make_member(other, "member")
    stranger_mid = await membership_id(su, other, stranger)
    c = await client_for(crew.org.owner)
    before, before_other = await snapshot(crew.org.id), await snapshot(other.id)
    base = f"/orgs/{crew.org.slug}/members"
    # the reference: an id that belongs to no one
    generic = await c.post(f"{base}/{uuid.uuid4()}/role", {"role": "member"})
    assert generic.status_code == 404 and GENERIC_404 in text_of(generic)
    for mid in (stranger_mid, other.owner.id, uuid.uuid4(), "not-a-uuid", "1", "%00", "1' OR '1'='1", "ffffffff-ffff-ffff-ffff-fffffffffffff"):
        for action, data in (("role", {"role": "member"}), ("remove", {})):
            r = await c.post(f"{base}/{mid}/{action}", data)
            assert r.status_code == 404, (mid, action)
            assert main_html(r) == main_html(generic)
        r = await c.get(f"{base}/{mid}/remove")
        assert r.status_code == 404 and main_html(r) == main_html(generic)
    assert await snapshot(crew.org.id) == before and await snapshot(other.id) == before_other


# -- removal -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", NON_OWNER)
async def test_owner_removes_any_non_owner(crew, client_for, su, target):
    victim = await client_for(crew.users[target])
    assert (await victim.get(f"/orgs/{crew.org.slug}")).status_code == 200
    c = await client_for(crew.org.owner)
    mid = crew.memberships[target]
    confirm = await c.get(f"/orgs/{crew.org.slug}/members/{mid}/remove")
    assert confirm.status_code == 200 and crew.users[target].email in confirm.text and "Remove member" in confirm.text
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/remove")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{crew.org.slug}/members"
    assert mid not in await roles_of(su, crew.org)
    evs = await events(su, crew.org, "member.removed")
    assert len(evs) == 1 and evs[0]["target_id"] == str(mid) and f'"role": "{target}"' in evs[0]["before"]
    assert evs[0]["after"] is None
    # the removed member's session loses the org on its very next request, GET or POST
    assert (await victim.get(f"/orgs/{crew.org.slug}")).status_code == 404
    assert (await victim.get(f"/orgs/{crew.org.slug}/members")).status_code == 404
    assert (await victim.post(f"/orgs/{crew.org.slug}/leave")).status_code == 404
    listing = await victim.get("/orgs")
    assert crew.org.slug not in listing.text


async def test_remove_with_htmx_drops_the_row(crew, client_for, su):
    c = await client_for(crew.org.owner)
    mid = crew.memberships["compliance_officer"]
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/remove", htmx=True)
    assert r.status_code == 200
    assert "<tr" not in r.text and 'hx-swap-oob="true"' in r.text and "was removed" in r.text
    assert mid not in await roles_of(su, crew.org)
    # removing again: the row goes, with a reason
    r = await c.post(f"/orgs/{crew.org.slug}/members/{mid}/remove", htmx=True)
    assert r.status_code == 404 and "<tr" not in r.text and "not a member of this organization" in r.text


@pytest.mark.parametrize("actor", NON_OWNER)
async def test_non_owners_cannot_remove_anyone(crew, client_for, snapshot, actor):
    c = await client_for(crew.users[actor])
    before = await snapshot(crew.org.id)
    for target in ROLES:
        r = await c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships[target]}/remove")
        assert r.status_code == 403, target
        r = await c.get(f"/orgs/{crew.org.slug}/members/{crew.memberships[target]}/remove")
        assert r.status_code == 403, target
    assert await snapshot(crew.org.id) == before


async def test_owner_cannot_remove_themselves(crew, client_for, snapshot):
    c = await client_for(crew.org.owner)
    before = await snapshot(crew.org.id)
    r = await c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['owner']}/remove")
    assert r.status_code == 409 and "can't remove yourself" in text_of(r)
    r = await c.get(f"/orgs/{crew.org.slug}/members/{crew.memberships['owner']}/remove")
    assert r.status_code == 409
    r = await c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships['owner']}/remove", htmx=True)
    assert r.status_code == 409 and f'<tr id="member-{crew.memberships["owner"]}">' in r.text and "flash-error" in r.text
    assert await snapshot(crew.org.id) == before


# -- leave ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", NON_OWNER)
async def test_non_owners_leave_after_confirming(crew, client_for, su, role):
    c = await client_for(crew.users[role])
    page = await c.get(f"/orgs/{crew.org.slug}/leave")
    assert page.status_code == 200 and "Leave organization" in page.text and f'action="/orgs/{crew.org.slug}/leave"' in page.text
    r = await c.post(f"/orgs/{crew.org.slug}/leave")
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    landing = await c.get("/orgs")
    assert f"You left {crew.org.name}." in text_of(landing) and f"/orgs/{crew.org.slug}\"" not in landing.text
    assert crew.memberships[role] not in await roles_of(su, crew.org)
    evs = await events(su, crew.org, "member.left")
    assert len(evs) == 1 and evs[0]["actor_id"] == crew.users[role].id and f'"role": "{role}"' in evs[0]["before"]
    assert (await c.get(f"/orgs/{crew.org.slug}")).status_code == 404
    assert await owner_count(su, crew.org) == 1


async def test_owner_is_told_to_transfer_before_leaving(crew, client_for, snapshot):
    c = await client_for(crew.org.owner)
    before = await snapshot(crew.org.id)
    page = await c.get(f"/orgs/{crew.org.slug}/leave")
    assert page.status_code == 409
    assert "You are the owner: transfer ownership before leaving." in text_of(page)
    assert f'href="/orgs/{crew.org.slug}/transfer"' in page.text and "<form" not in page.text.split("<main", 1)[1]
    r = await c.post(f"/orgs/{crew.org.slug}/leave")
    assert r.status_code == 403
    assert await snapshot(crew.org.id) == before


async def test_owner_sees_no_leave_link_and_others_do(crew, client_for):
    for role in ROLES:
        c = await client_for(crew.users[role])
        r = await c.get(f"/orgs/{crew.org.slug}/members")
        assert (f'href="/orgs/{crew.org.slug}/leave"' in r.text) is (role != "owner")


# -- transfer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", NON_OWNER)
async def test_owner_transfers_to_any_member(crew, client_for, su, target):
    c = await client_for(crew.org.owner)
    form = await c.get(f"/orgs/{crew.org.slug}/transfer")
    assert form.status_code == 200
    for role in NON_OWNER:
        assert f'value="{crew.memberships[role]}"' in form.text
    assert f'value="{crew.memberships["owner"]}"' not in form.text
    assert '<label for="f-member_id">' in form.text and '<label for="f-password">' in form.text
    r = await c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships[target]), "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{crew.org.slug}"
    roles = await roles_of(su, crew.org)
    assert roles[crew.memberships[target]] == "owner" and roles[crew.memberships["owner"]] == "member"
    assert await owner_count(su, crew.org) == 1
    evs = await events(su, crew.org, "org.ownership_transferred")
    assert len(evs) == 1
    assert evs[0]["actor_id"] == crew.org.owner.id and evs[0]["target_id"] == str(crew.memberships[target])
    assert f'"new_owner_role": "{target}"' in evs[0]["before"] and '"previous_owner_role": "member"' in evs[0]["after"]
    dash = await c.get(r.headers["location"])
    assert "is now the owner" in text_of(dash)
    # the very next request sees the new roles
    assert (await c.get(f"/orgs/{crew.org.slug}/settings")).status_code == 403
    assert (await c.post(f"/orgs/{crew.org.slug}/members/{crew.memberships[target]}/role", {"role": "member"})).status_code == 403
    new_owner = await client_for(crew.users[target])
    assert (await new_owner.get(f"/orgs/{crew.org.slug}/settings")).status_code == 200
    # and the previous owner may now leave
    assert (await c.post(f"/orgs/{crew.org.slug}/leave")).status_code == 303


async def test_transfer_refusals_write_nothing(crew, make_org, make_member, su, client_for, snapshot):
    other = await make_org()
    stranger_mid = await membership_id(su, other, await make_member(other, "member"))
    c = await client_for(crew.org.owner)
    url = f"/orgs/{crew.org.slug}/transfer"
    before = await snapshot(crew.org.id)
    target = str(crew.memberships["member"])

    r = await c.post(url, {"member_id": target, "password": "wrong-password-123"})
    assert r.status_code == 422 and "That password isn't right." in text_of(r)
    assert f'value="{target}" selected' in r.text and "wrong-password-123" not in r.text
    r = await c.post(url, {})
    assert r.status_code == 422 and "Choose the member" in text_of(r) and "Enter your password" in text_of(r)
    r = await c.post(url, {"member_id": str(crew.memberships["owner"]), "password": PASSWORD})
    assert r.status_code == 422 and "already own" in text_of(r)
    for bad in (str(stranger_mid), str(uuid.uuid4()), "nope", "\x00nope", "x" * 3000):
        r = await c.post(url, {"member_id": bad, "password": PASSWORD})
        assert r.status_code == 404, bad
        assert "not a member of this organization" in text_of(r)
    assert await snapshot(crew.org.id) == before
    assert await owner_count(su, other) == 1


@pytest.mark.parametrize("actor", NON_OWNER)
async def test_non_owners_cannot_transfer(crew, client_for, snapshot, actor):
    c = await client_for(crew.users[actor])
    before = await snapshot(crew.org.id)
    assert (await c.get(f"/orgs/{crew.org.slug}/transfer")).status_code == 403
    r = await c.post(f"/orgs/{crew.org.slug}/transfer", {"member_id": str(crew.memberships[actor]), "password": PASSWORD})
    assert r.status_code == 403
    assert await snapshot(crew.org.id) == before


async def test_transfer_password_guessing_is_throttled(crew, client_for, snapshot):
    from portal.accounts import service  # a re-entered password is throttled as a sign-in is

    c = await client_for(crew.org.owner)
    url = f"/orgs/{crew.org.slug}/transfer"
    for _ in range(service.MAX_FAILURES_PER_PAIR):
        r = await c.post(url, {"member_id": str(crew.memberships["member"]), "password": "not-the-password"})
        assert r.status_code == 422
    before = await snapshot(crew.org.id)
    r = await c.post(url, {"member_id": str(crew.memberships["member"]), "password": PASSWORD})
    assert r.status_code == 429 and "Too many sign-in attempts" in text_of(r) and int(r.headers["retry-after"]) > 0
    assert await snapshot(crew.org.id) == before


async def test_transfer_page_search_and_empty_org(make_org, make_member, make_user, client_for):
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.get(f"/orgs/{org.slug}/transfer")
    assert r.status_code == 200 and "There is no one else" in text_of(r)
    grace = await make_member(org, "member", await make_user(name="Grace Hopper"))
    await make_member(org, "member", await make_user(name="Edsger Dijkstra"))
    r = await c.get(f"/orgs/{org.slug}/transfer", params={"q": "hopper"})
    assert grace.email in r.text and "Dijkstra" not in r.text


async def test_settings_page_links_to_the_transfer_page(crew, client_for):
    c = await client_for(crew.org.owner)
    r = await c.get(f"/orgs/{crew.org.slug}/settings")
    assert r.status_code == 200 and f'href="/orgs/{crew.org.slug}/transfer"' in r.text and "Transfer ownership" in r.text


# -- cross-cutting ---------------------------------------------------------------------------------
async def test_every_member_post_without_csrf_is_refused_and_writes_nothing(crew, client_for, snapshot):
    before = await snapshot(crew.org.id)
    owner = await client_for(crew.org.owner)
    member = await client_for(crew.users["member"])
    base = f"/orgs/{crew.org.slug}"
    for c, url, data in (
        (owner, f"{base}/members/{crew.memberships['member']}/role", {"role": "billing_admin"}),
        (owner, f"{base}/members/{crew.memberships['member']}/remove", {}),
        (owner, f"{base}/transfer", {"member_id": str(crew.memberships["member"]), "password": PASSWORD}),
        (member, f"{base}/leave", {}),
    ):
        r = await c.post(url, data, csrf=False)
        assert r.status_code == 403, url
    assert await snapshot(crew.org.id) == before


async def test_injected_org_and_role_fields_are_ignored(crew, make_org, client_for, su):
    other = await make_org()
    c = await client_for(crew.org.owner)
    r = await c.post(
        f"/orgs/{crew.org.slug}/members/{crew.memberships['member']}/role",
        {"role": "billing_admin", "org_id": str(other.id), "org": other.slug, "user_id": str(other.owner.id)},
        headers={"X-Org-Id": str(other.id)},
    )
    assert r.status_code == 303
    assert (await roles_of(su, crew.org))[crew.memberships["member"]] == "billing_admin"
    assert await owner_count(su, other) == 1 and await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action LIKE 'member.%'", other.id) == 0


async def test_database_refuses_a_second_owner(database, crew):
    """The partial unique index backs the rule, whatever the code does."""
    import asyncpg

    conn = await asyncpg.connect(database.app_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.org_id', $1, true)", str(crew.org.id))
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("UPDATE membership SET role = 'owner' WHERE id = $1", crew.memberships["member"])
    finally:
        await conn.close()


def test_grantable_never_exceeds_the_granter():
    from portal.tenancy.permissions import BUILT_IN_CHOICES, BUILT_IN_ROLES, MATRIX, Perm, Role

    def grantable(actor: Role, role: Role) -> bool:
        return BUILT_IN_CHOICES[role].within(MATRIX[actor])

    for actor in BUILT_IN_ROLES:
        for role in BUILT_IN_ROLES:
            if grantable(actor, role):
                assert role != Role.OWNER
                assert MATRIX[role] - {Perm.LEAVE} <= MATRIX[actor]
    assert all(grantable(Role.OWNER, r) for r in (Role.MEMBER, Role.BILLING_ADMIN, Role.COMPLIANCE_OFFICER))
    assert not grantable(Role.MEMBER, Role.BILLING_ADMIN) and not grantable(Role.BILLING_ADMIN, Role.COMPLIANCE_OFFICER)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ident=st.text(max_size=80),
    role=st.text(max_size=60),
    q=st.text(max_size=200),
    cursor=st.text(max_size=80),
    member_id=st.text(max_size=80),
    password=st.text(max_size=80),
)
async def test_member_inputs_fuzz_never_500(crew, client_for, su, ident, role, q, cursor, member_id, password):
    """SECURITY 31 for these routes: any path id, role, search, cursor or form value is answered
    without a 500, and nothing changes hands."""
    from urllib.parse import quote

    c = await client_for(crew.org.owner)
    base = f"/orgs/{crew.org.slug}"
    path_id = quote(ident, safe="")
    responses = [
        await c.get(f"{base}/members", params={"q": q, "after": cursor}),
        await c.get(f"{base}/members", params={"q": q, "before": cursor}, headers={"HX-Request": "true", "HX-Target": "member-list"}),
        await c.post(f"{base}/members/{path_id}/role", {"role": role}),
        await c.post(f"{base}/members/{path_id}/role", {"role": role}, htmx=True),
        await c.get(f"{base}/members/{path_id}/remove"),
        await c.post(f"{base}/members/{path_id}/remove", htmx=True),
        await c.get(f"{base}/transfer", params={"q": q, "member_id": member_id}),
        await c.post(f"{base}/transfer", {"member_id": member_id, "password": password, "q": q}),
    ]
    for r in responses:
        assert r.status_code < 500, (r.request.method, r.request.url, r.status_code)
    assert await owner_count(su, crew.org) == 1
    assert len(await roles_of(su, crew.org)) == 4
