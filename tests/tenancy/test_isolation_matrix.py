"""Whole-portal isolation proof (SECURITY.md A and B): every route of the live route table ×
anonymous, the four roles, a member of another org, a removed member and a user of a deleted org,
against the checked-in table in tests/access_matrix.py. A denial writes nothing (per-table
checksums of the target org); every path id swapped for another org's is a 404; org, role and
user fields injected into forms, query strings and headers are ignored."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from uuid import UUID

import pytest

from tests.access_matrix import ACCESS, PUBLIC, ROLES, SIGNED_IN, SPEC_HOLDERS
from tests.conftest import PASSWORD, Client, unique

PERSONAS_OUTSIDE = ("outsider", "removed", "deleted_org_user")


def live_routes(app) -> list[tuple[str, str]]:
    out = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                out.add((method, route.path_format))
    return sorted(out)


def test_every_live_route_has_a_row_in_the_access_table(app):
    live = {f"{m} {p}" for m, p in live_routes(app)}
    assert live - set(ACCESS) == set(), "declare these routes in tests/access_matrix.py"
    assert set(ACCESS) - live == set(), "stale rows in tests/access_matrix.py"


@dataclass
class World:
    org_id: UUID
    slug: str
    users: dict = field(default_factory=dict)  # persona -> User
    ids: dict = field(default_factory=dict)  # path param -> id


async def build_world(su, make_org, make_member, make_user, *, with_outsiders: bool = True) -> World:
    """An org with one person per role, every kind of object, and the outside personas."""
    org = await make_org()
    w = World(org.id, org.slug, {"owner": org.owner})
    for role in ROLES[1:]:
        w.users[role] = await make_member(org, role)
    target = await make_member(org, "member")  # the member that role change / removal act on
    mid = lambda user: su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id)  # noqa: E731
    w.ids["member_id"] = await mid(target)
    agent = await su.fetchval("INSERT INTO agent (org_id, name, model) VALUES ($1, $2, 'gpt-5') RETURNING id", org.id, unique("agent"))
    w.ids["agent_id"] = agent
    w.ids["workflow_id"] = await su.fetchval(
        "INSERT INTO workflow (org_id, name, agent_id, definition) VALUES ($1, $2, $3, '{\"steps\": []}') RETURNING id",
        org.id, unique("wf"), agent,
    )
    w.ids["connection_id"] = await su.fetchval(
        "INSERT INTO connection (org_id, name, kind) VALUES ($1, $2, 'openai') RETURNING id", org.id, unique("conn")
    )
    team = await su.fetchval("INSERT INTO team (org_id, name) VALUES ($1, $2) RETURNING id", org.id, unique("team"))
    w.ids["team_id"] = team
    w.ids["membership_id"] = w.ids["member_id"]
    await su.execute("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", org.id, team, w.ids["member_id"])
    w.ids["invite_id"] = await su.fetchval(
        """INSERT INTO invite (org_id, email, role, token_hash, invited_by, expires_at)
           VALUES ($1, $2, 'member', $3, $4, now() + interval '7 days') RETURNING id""",
        org.id, f"{unique('inv')}@example.test", hashlib.sha256(secrets.token_bytes(16)).hexdigest(), org.owner.id,
    )
    data = b"PK\x05\x06" + b"\x00" * 18  # an empty ZIP
    job = await su.fetchval(
        """INSERT INTO export_job (org_id, requested_by, requested_by_email, status, progress, size_bytes, sha256,
                                   filename, finished_at, expires_at)
           VALUES ($1, $2, $3, 'done', 100, $4, $5, 'x.zip', now(), now() + interval '1 day') RETURNING id""",
        org.id, org.owner.id, org.owner.email, len(data), hashlib.sha256(data).hexdigest(),
    )
    await su.execute("INSERT INTO export_chunk (org_id, job_id, seq, data) VALUES ($1, $2, 0, $3)", org.id, job, data)
    w.ids["export_id"] = job
    w.ids["token"] = secrets.token_urlsafe(32)
    w.ids["file_path"] = "app.css"
    if with_outsiders:
        other = await make_org()
        w.users["outsider"] = other.owner  # an owner — of another org
        removed = await make_member(org, "compliance_officer")
        await su.execute("DELETE FROM membership WHERE org_id = $1 AND user_id = $2", org.id, removed.id)
        w.users["removed"] = removed
    return w


def fill(path: str, ids: dict, slug: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: slug if m.group(1) == "slug" else str(ids[m.group(1)]), path)


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
async def world(su, make_org, make_member, make_user):
    return await build_world(su, make_org, make_member, make_user)


@pytest.fixture
async def deleted_world(su, make_org, make_member, make_user):
    """A user whose org was deleted, and that org's old ids."""
    w = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    await su.execute("DELETE FROM organization WHERE id = $1", w.org_id)
    return w


async def test_denials_match_the_table_and_write_nothing(app, world, deleted_world, client_for, snapshot):
    clients = {"anonymous": Client(app)}
    for persona, user in world.users.items():
        clients[persona] = await client_for(user)
    clients["deleted_org_user"] = await client_for(deleted_world.users["member"])
    checked = 0
    for method, path in live_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        for persona, c in clients.items():
            expected = denied_code(requirement, persona)
            if expected is None:
                continue
            target = deleted_world if persona == "deleted_org_user" else world
            url = fill(path, target.ids, target.slug)
            before = await snapshot(world.org_id)
            if method == "GET":
                r = await c.get(url)
            else:
                r = await c.post(url, {"name": "x", "role": "owner", "member_id": str(target.ids["member_id"])})
            assert r.status_code == expected, (persona, method, path, r.status_code)
            if expected == 303:
                assert is_login_redirect(r), (persona, method, path)
            assert await snapshot(world.org_id) == before, (persona, method, path)
            checked += 1
    assert checked > 200
    await clients["anonymous"].aclose()


async def test_every_allowed_role_gets_past_the_guard(app, su, make_org, make_member, make_user, client_for):
    """For each route and each role SPEC §2 allows: not a denial, not a crash (a fresh world per
    case, since allowed requests change things)."""
    checked = 0
    for method, path in live_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        if requirement in (PUBLIC, SIGNED_IN) or not path.startswith("/orgs/{slug}"):
            continue
        for role in sorted(SPEC_HOLDERS[requirement]):
            w = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
            c = await client_for(w.users[role])
            url = fill(path, w.ids, w.slug)
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
        "agent_id": str(w.ids["agent_id"]), "membership_id": str(w.ids["membership_id"]), "enabled": "false",
        "email": f"{unique('p')}@example.test", "member_id": str(w.ids["member_id"]), "confirm": w.slug,
        "password": PASSWORD,
    }


async def test_every_path_id_of_another_org_is_a_404_and_changes_nothing(app, su, make_org, make_member, make_user, client_for, snapshot):
    mine = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    theirs = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    owner = await client_for(mine.users["owner"])
    checked = 0
    for method, path in live_routes(app):
        params = [p for p in re.findall(r"\{(\w+)\}", path) if p not in ("slug", "token", "file_path")]
        if not path.startswith("/orgs/{slug}") or not params:
            continue
        for swapped in params:
            ids = dict(mine.ids, **{swapped: theirs.ids[swapped]})
            before = await org_state(su, snapshot, theirs.org_id)
            url = fill(path, ids, mine.slug)
            r = await owner.get(url) if method == "GET" else await owner.post(url, plausible_form(mine))
            assert r.status_code == 404, (method, path, swapped, r.status_code)
            assert await org_state(su, snapshot, theirs.org_id) == before
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


async def test_injected_org_role_and_user_fields_are_ignored(app, su, make_org, make_member, make_user, client_for, snapshot):
    """Every unsafe org route, called by its least-privileged allowed role with org/role/user fields
    pointing elsewhere — in the form, the query string and headers: the other org is untouched,
    and nobody's role rises."""
    victim = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    checked = 0
    for method, path in live_routes(app):
        requirement = ACCESS[f"{method} {path}"]
        if method == "GET" or not path.startswith("/orgs/{slug}"):
            continue
        role = sorted(SPEC_HOLDERS[requirement], key=ROLES.index)[-1]
        w = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
        c = await client_for(w.users[role])
        injected = {
            "org_id": str(victim.org_id), "org": victim.slug, "slug": victim.slug, "role": "owner",
            "user_id": str(victim.users["owner"].id), "owner": str(w.users[role].id),
        }
        before = await org_state(su, snapshot, victim.org_id)
        query = "&".join(f"{k}={v}" for k, v in injected.items())
        url = fill(path, w.ids, w.slug) + "?" + query
        headers = {f"X-{k.replace('_', '-')}": v for k, v in injected.items()}
        r = await c.post(url, {**injected, "name": unique("Injected")}, headers=headers)
        assert r.status_code < 500, (method, path, r.status_code)
        assert await org_state(su, snapshot, victim.org_id) == before, (method, path)
        owners = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND role = 'owner'", w.org_id)
        assert owners == 1, (method, path)
        if role != "owner":
            new_role = await su.fetchval("SELECT role FROM membership WHERE org_id = $1 AND user_id = $2", w.org_id, w.users[role].id)
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


async def test_every_form_id_of_another_org_is_refused(app, su, make_org, make_member, make_user, client_for, snapshot):
    mine = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    theirs = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    owner = await client_for(mine.users["owner"])
    for path, field_name in FORM_IDS:
        mine_before = await org_state(su, snapshot, mine.org_id)
        theirs_before = await org_state(su, snapshot, theirs.org_id)
        form = plausible_form(mine) | {field_name: str(theirs.ids["member_id" if field_name == "member_id" else field_name])}
        r = await owner.post(fill(path, mine.ids, mine.slug), form)
        assert r.status_code == 404, (path, field_name, r.status_code)
        assert await org_state(su, snapshot, theirs.org_id) == theirs_before
        assert await org_state(su, snapshot, mine.org_id) == mine_before


async def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token(app, su, make_org, make_member, make_user, client_for, snapshot):
    """SECURITY.md 24, swept over the route table: for every unsafe route, a caller the route
    would otherwise serve, without the token and with a forged one → 403, nothing written."""
    w = await build_world(su, make_org, make_member, make_user, with_outsiders=False)
    checked = 0
    for method, path in live_routes(app):
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
        url = fill(path, w.ids, w.slug)
        for token in (None, "forged-" + secrets.token_hex(32)):
            before = await org_state(su, snapshot, w.org_id)
            sessions_before = await su.fetchval("SELECT count(*) FROM user_session WHERE revoked_at IS NULL")
            form = plausible_form(w) | ({"_csrf_token": token} if token else {})
            r = await c.post(url, form, csrf=False)
            assert r.status_code == 403, (method, path, token is not None, r.status_code)
            assert await org_state(su, snapshot, w.org_id) == before, (method, path)
            assert await su.fetchval("SELECT count(*) FROM user_session WHERE revoked_at IS NULL") == sessions_before
            checked += 1
    assert checked > 60
