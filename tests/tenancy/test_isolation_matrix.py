"""Whole-portal isolation proof (SECURITY.md A and B): every route of the live route table ×
anonymous, the four roles, a member of another org, a removed member and a user of a deleted org,
against the checked-in table in tests/access_matrix.py. A denial writes nothing (per-table
checksums of the target org); every path id swapped for another org's is a 404; org, role and
user fields injected into forms, query strings and headers are ignored."""

from __future__ import annotations

import re
import secrets
from uuid import UUID

import pytest

from tests.access_matrix import ACCESS, PUBLIC, ROLES, SIGNED_IN, SPEC_HOLDERS
from tests.factories import PASSWORD, Client, World, unique
from tests.routes import fill, live_routes, page_routes

PERSONAS_OUTSIDE = ("outsider", "removed", "deleted_org_user")


def test_every_live_route_has_a_row_in_the_access_table(app):
    live = {f"{m} {p}" for m, p in live_routes(app)}  # pages and the JSON API alike
    assert live - set(ACCESS) == set(), "declare these routes in tests/access_matrix.py"
    assert set(ACCESS) - live == set(), "stale rows in tests/access_matrix.py"


def denied_code(requirement: str, persona: str) -> int | None:
    """The status SPEC §1/§2/§7 prescribe, or None when the persona is allowed."""
    if requirement == PUBLIC:
        return None
    if persona == "anonymous":
        return 303
    if requirement == SIGNED_IN:
        return None
    if persona in PERSONAS_OUTSIDE:
        return 404
    return None if persona in SPEC_HOLDERS[requirement] else 403


def is_login_redirect(r) -> bool:
    return r.status_code in (200, 303) and (r.headers.get("location", "") + r.headers.get("hx-redirect", "")).startswith("/login?next=")


@pytest.fixture
async def deleted_world(su, make_world):
    """A user whose org was deleted, and that org's old ids."""
    w = await make_world()
    await su.execute("DELETE FROM organization WHERE id = $1", w.org.id)
    return w


async def test_denials_match_the_table_and_write_nothing(app, make_world, deleted_world, client_for, snapshot):
    world = await make_world(outsiders=True)
    clients = {"anonymous": Client(app)}
    for persona, user in world.users.items():
        clients[persona] = await client_for(user)
    clients["deleted_org_user"] = await client_for(deleted_world.users["member"])
    checked = 0
    before = await snapshot(world.org.id)  # a denial writes nothing: the org stays exactly this after every one
    for method, path in page_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        for persona, c in clients.items():
            expected = denied_code(requirement, persona)
            if expected is None:
                continue
            target = deleted_world if persona == "deleted_org_user" else world
            url = fill(path, target.params)
            if method == "GET":
                r = await c.get(url)
            else:
                r = await c.post(url, {"name": "x", "role": "owner", "member_id": target.params["member_id"]})
            assert r.status_code == expected, (persona, method, path, r.status_code)
            if expected == 303:
                assert is_login_redirect(r), (persona, method, path)
            assert await snapshot(world.org.id) == before, (persona, method, path)
            checked += 1
    assert checked > 200
    await clients["anonymous"].aclose()


async def test_every_allowed_role_gets_past_the_guard(app, make_world, client_for):
    """For each route and each role SPEC §2 allows: not a denial, not a crash (a fresh world per
    case, since allowed requests change things)."""
    checked = 0
    for method, path in page_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        if requirement in (PUBLIC, SIGNED_IN) or not path.startswith("/orgs/{slug}"):
            continue
        for role in sorted(SPEC_HOLDERS[requirement]):
            w = await make_world()
            c = await client_for(w.users[role])
            url = fill(path, w.params)
            r = await c.get(url) if method == "GET" else await c.post(url, {})
            assert r.status_code not in (403, 404) and r.status_code < 500, (role, method, path, r.status_code)
            assert not is_login_redirect(r)
            checked += 1
    assert checked > 80


def plausible_form(w: World) -> dict[str, str]:
    """Fields every form of the portal accepts, valid for world ``w``: so the id is the only
    thing wrong with the request."""
    return {
        "role": "billing_admin", "name": unique("Name"), "description": "d", "model": "gpt-5", "status": "paused",
        "kind": "openai", "config": "{}", "secret": "s3cret-value", "definition": '{"steps": []}',
        "agent_id": w.params["agent_id"], "membership_id": w.params["membership_id"], "enabled": "false",
        "email": f"{unique('p')}@example.test", "member_id": w.params["member_id"], "confirm": w.org.slug,
        "password": PASSWORD,
    }


async def test_every_path_id_of_another_org_is_a_404_and_changes_nothing(app, su, make_world, client_for, snapshot):
    mine = await make_world()
    theirs = await make_world()
    owner = await client_for(mine.users["owner"])
    checked = 0
    for method, path in page_routes(app):
        params = [p for p in re.findall(r"\{(\w+)\}", path) if p not in ("slug", "token", "file_path")]
        if not path.startswith("/orgs/{slug}") or not params:
            continue
        for swapped in params:
            params = dict(mine.params, **{swapped: theirs.params[swapped]})
            before = await org_state(su, snapshot, theirs.org.id)
            url = fill(path, params)
            r = await owner.get(url) if method == "GET" else await owner.post(url, plausible_form(mine))
            assert r.status_code == 404, (method, path, swapped, r.status_code)
            assert await org_state(su, snapshot, theirs.org.id) == before
            checked += 1
    assert checked > 30


async def org_state(su, snapshot, org_id: UUID) -> dict:
    """Checksums of one org's rows in every tenant table, plus its organization row and its
    members' accounts (other orgs' legitimate changes elsewhere don't count)."""
    state = {k: v for k, v in (await snapshot(org_id)).items() if k not in ("organization", "app_user")}
    state["organization"] = await su.fetchval("SELECT md5(t::text) FROM organization t WHERE id = $1", org_id)
    state["accounts"] = await su.fetchval(
        """SELECT md5(coalesce(string_agg(u::text, '|' ORDER BY u.id), '')) FROM app_user u
           WHERE u.id IN (SELECT user_id FROM membership WHERE org_id = $1)""",
        org_id,
    )
    return state


async def test_injected_org_role_and_user_fields_are_ignored(app, su, make_world, client_for, snapshot):
    """Every unsafe org route, called by its least-privileged allowed role with org/role/user fields
    pointing elsewhere — in the form, the query string and headers: the other org is untouched,
    and nobody's role rises."""
    victim = await make_world()
    checked = 0
    for method, path in page_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        if method == "GET" or not path.startswith("/orgs/{slug}"):
            continue
        role = sorted(SPEC_HOLDERS[requirement], key=ROLES.index)[-1]
        w = await make_world()
        c = await client_for(w.users[role])
        injected = {
            "org_id": str(victim.org.id), "org": victim.org.slug, "slug": victim.org.slug, "role": "owner",
            "user_id": str(victim.users["owner"].id), "owner": str(w.users[role].id),
        }
        before = await org_state(su, snapshot, victim.org.id)
        query = "&".join(f"{k}={v}" for k, v in injected.items())
        url = fill(path, w.params) + "?" + query
        headers = {f"X-{k.replace('_', '-')}": v for k, v in injected.items()}
        r = await c.post(url, {**injected, "name": unique("Injected")}, headers=headers)
        assert r.status_code < 500, (method, path, r.status_code)
        assert await org_state(su, snapshot, victim.org.id) == before, (method, path)
        owners = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND role = 'owner'", w.org.id)
        assert owners == 1, (method, path)
        if role != "owner":
            new_role = await su.fetchval("SELECT role FROM membership WHERE org_id = $1 AND user_id = $2", w.org.id, w.users[role].id)
            assert new_role in (None, role), (method, path, new_role)  # unchanged (or left the org)
        checked += 1
    assert checked >= 25


FORM_IDS = [
    ("/orgs/{slug}/workflows", "agent_id"),
    ("/orgs/{slug}/workflows/{workflow_id}/edit", "agent_id"),
    ("/orgs/{slug}/teams/{team_id}/members", "membership_id"),
    ("/orgs/{slug}/transfer", "member_id"),
]


def test_form_id_list_covers_every_id_field_the_code_reads():
    """Every form field ending in _id that the code reads is in FORM_IDS (a new one must be added)."""
    from portal.config import ROOT

    read = re.compile(r"""(?:field\(form,\s*|form\.get\(|form\[)["'](\w+_id)["']""")
    fields = {m for p in (ROOT / "portal").rglob("*.py") for m in read.findall(p.read_text())}
    assert fields and fields <= {f for _, f in FORM_IDS}, fields


async def test_every_form_id_of_another_org_is_refused(app, su, make_world, client_for, snapshot):
    mine = await make_world()
    theirs = await make_world()
    owner = await client_for(mine.users["owner"])
    for path, field_name in FORM_IDS:
        mine_before = await org_state(su, snapshot, mine.org.id)
        theirs_before = await org_state(su, snapshot, theirs.org.id)
        form = plausible_form(mine) | {field_name: theirs.params[field_name]}
        r = await owner.post(fill(path, mine.params), form)
        assert r.status_code == 404, (path, field_name, r.status_code)
        assert await org_state(su, snapshot, theirs.org.id) == theirs_before
        assert await org_state(su, snapshot, mine.org.id) == mine_before


async def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token(app, su, make_world, client_for, snapshot):
    """SECURITY.md 24, swept over the route table: for every unsafe route, a caller the route
    would otherwise serve, without the token and with a forged one → 403, nothing written."""
    w = await make_world()
    checked = 0
    for method, path in page_routes(app):
        if method == "GET":
            continue
        requirement = ACCESS[f"{method} {path}"]
        if path.startswith("/orgs/{slug}"):
            user = w.users[sorted(SPEC_HOLDERS[requirement], key=ROLES.index)[0]]
            c = await client_for(user)
        elif requirement == SIGNED_IN:
            c = await client_for(w.users["member"])
        else:
            c = Client(app)
            await c.ensure_csrf()
        url = fill(path, w.params)
        for token in (None, "forged-" + secrets.token_hex(32)):
            before = await org_state(su, snapshot, w.org.id)
            sessions_before = await su.fetchval("SELECT count(*) FROM user_session WHERE revoked_at IS NULL")
            form = plausible_form(w) | ({"_csrf_token": token} if token else {})
            r = await c.post(url, form, csrf=False)
            assert r.status_code == 403, (method, path, token is not None, r.status_code)
            assert await org_state(su, snapshot, w.org.id) == before, (method, path)
            assert await su.fetchval("SELECT count(*) FROM user_session WHERE revoked_at IS NULL") == sessions_before
            checked += 1
    assert checked > 60
