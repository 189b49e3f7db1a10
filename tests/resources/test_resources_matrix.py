"""SPEC §2 for every route of agents, workflows, connections, teams, billing, the audit log and the
access report — generated from the live route table — × the four roles × a member of another org
× anonymous; plus every id swapped for another org's, and cross-org references refused by the
database itself."""

from __future__ import annotations

import json

import asyncpg
import pytest

from portal.tenancy.permissions import Perm
from tests.factories import DEFINITION, ROLES, add_agent, add_team, unique
from tests.routes import ORG_PREFIX, fill, handler_for, live_routes

# SPEC §2, the rows this feature touches, written out from the table (not from the code's matrix).
EVERYONE = {"owner", "billing_admin", "compliance_officer", "member"}
SPEC = {
    "view dashboard, members list, agents, workflows, connections, teams": (Perm.VIEW, EVERYONE),
    "create/edit/delete agents, workflows, connections, teams": (Perm.MANAGE_RESOURCES, {"owner", "member"}),
    "view and change billing settings": (Perm.BILLING, {"owner", "billing_admin"}),
    "view audit log, download audit CSV, access report": (Perm.AUDIT, {"owner", "compliance_officer"}),
}
MANAGE_PAGES = ("/new", "/edit", "/delete")  # GET pages that exist only to change something
RESOURCE_SECTIONS = ("agents", "workflows", "connections", "teams")
SECTIONS = (*RESOURCE_SECTIONS, "billing", "audit", "audit.csv", "access-report", "access-report.csv")


def feature_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of this feature, read from the live route table."""
    return [(method, path) for method, path in live_routes(app) if path.startswith(ORG_PREFIX + "/") and path.split("/")[3] in SECTIONS]


def main_of(r) -> str:
    return r.text.split("<main", 1)[-1].split("</main>", 1)[0]


def spec_row(method: str, path: str) -> str:
    section = path.split("/")[3]
    if section in RESOURCE_SECTIONS:
        if method == "GET" and not path.endswith(MANAGE_PAGES):
            return "view dashboard, members list, agents, workflows, connections, teams"
        return "create/edit/delete agents, workflows, connections, teams"
    if section == "billing":
        return "view and change billing settings"
    return "view audit log, download audit CSV, access report"


# Routes whose success is a page, not a redirect: what they create is shown once, on that response.
SHOWN_ONCE = {"/orgs/{slug}/agents/{agent_id}/tokens"}


def valid_form(method: str, path: str, world) -> dict[str, str]:
    """A form that succeeds for an allowed role. A new route without an entry fails the matrix."""
    if method == "GET":
        return {}
    name = unique("Name")
    forms = {
        "/orgs/{slug}/agents": {"name": name, "model": "gpt-4.1", "status": "active"},
        "/orgs/{slug}/agents/{agent_id}/edit": {"name": name, "model": "gpt-4.1-mini", "status": "paused"},
        "/orgs/{slug}/agents/{agent_id}/status": {"status": "paused"},
        "/orgs/{slug}/agents/{agent_id}/delete": {},
        "/orgs/{slug}/agents/{agent_id}/tokens": {"name": name, "expires_in_days": "30"},
        "/orgs/{slug}/agents/{agent_id}/tokens/{agent_token_id}/revoke": {},
        "/orgs/{slug}/workflows": {"name": name, "agent_id": str(world.agent_used), "definition": json.dumps(DEFINITION), "enabled": "1"},
        "/orgs/{slug}/workflows/{workflow_id}/edit": {"name": name, "agent_id": str(world.agent_free), "definition": json.dumps(DEFINITION)},
        "/orgs/{slug}/workflows/{workflow_id}/enabled": {"enabled": "false"},
        "/orgs/{slug}/workflows/{workflow_id}/delete": {},
        "/orgs/{slug}/connections": {"name": name, "kind": "openai", "config": "{}", "secret": "sk-matrix"},
        "/orgs/{slug}/connections/{connection_id}/edit": {"name": name, "config": '{"workspace": "other"}'},
        "/orgs/{slug}/connections/{connection_id}/secret": {"secret": "new-secret-value"},
        "/orgs/{slug}/connections/{connection_id}/delete": {},
        "/orgs/{slug}/teams": {"name": name},
        "/orgs/{slug}/teams/{team_id}/edit": {"name": name, "description": "Changed"},
        "/orgs/{slug}/teams/{team_id}/members": {"membership_id": str(world.memberships["billing_admin"])},
        "/orgs/{slug}/teams/{team_id}/members/{membership_id}/remove": {},
        "/orgs/{slug}/teams/{team_id}/delete": {},
        "/orgs/{slug}/billing": {"plan": "team", "billing_email": "billing@example.test", "seat_limit": "40", "spend_cap": "2500"},
    }
    return forms[path]


def test_the_matrix_covers_every_route_of_the_feature(app):
    routes = feature_routes(app)
    assert len(routes) >= 40, routes
    sections = {path.split("/")[3] for _, path in routes}
    assert sections == {"agents", "workflows", "connections", "teams", "billing", "audit", "audit.csv", "access-report", "access-report.csv"}


@pytest.mark.parametrize("row", sorted(SPEC))
def test_each_route_declares_the_permission_of_its_spec_row(app, row):
    perm, _ = SPEC[row]
    for method, path in feature_routes(app):
        if spec_row(method, path) == row:
            assert handler_for(app, method, path).opt["permission"] == perm, (method, path)


async def _count_events(su, org_id) -> int:
    return await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1", org_id)


@pytest.mark.parametrize("who", [*ROLES, "outsider", "anonymous"])
async def test_role_matrix(app, who, make_world, su, make_org, make_member, make_user, client_for, client, snapshot):
    """Every route × method for one kind of caller: the SPEC's answer, and nothing written when
    refused. An unsafe route the caller may use runs against a fresh org, so earlier changes can't
    change later answers; refusals share one org (the snapshot proves each left it as it was)."""
    problems = []
    shared = await make_world()
    outsider = await make_user()
    await make_member(await make_org(), "member", outsider)  # a member, but of another org
    for method, path in feature_routes(app):
        _, allowed = SPEC[spec_row(method, path)]
        world = shared if method == "GET" or who not in allowed else await make_world()
        if who == "anonymous":
            caller = client
        else:
            caller = await client_for(outsider if who == "outsider" else world.users[who])
        url = fill(path, world.params)
        before = await snapshot(world.org.id)
        events_before = await _count_events(su, world.org.id)
        if method == "GET":
            r = await caller.get(url)
        else:
            r = await caller.post(url, valid_form(method, path, world))
        if who == "anonymous":
            expected = 303
        elif who == "outsider":
            expected = 404
        elif who in allowed:
            expected = 200 if method == "GET" or path in SHOWN_ONCE else 303
        else:
            expected = 403
        if r.status_code != expected:
            problems.append((method, path, who, r.status_code, expected))
            continue
        if who in ("anonymous", "outsider") or who not in allowed or method == "GET":  # refused, or only reading
            if await snapshot(world.org.id) != before:
                problems.append((method, path, who, "data changed"))
        elif await _count_events(su, world.org.id) != events_before + 1:
            problems.append((method, path, who, "a change must write exactly one audit event"))
    assert problems == []


async def test_unsafe_routes_without_csrf_token_are_refused_and_write_nothing(app, make_world, su, client_for, snapshot):
    problems = []
    for method, path in feature_routes(app):
        if method == "GET":
            continue
        world = await make_world()
        c = await client_for(world.users["owner"])
        before = await snapshot(world.org.id)
        r = await c.post(fill(path, world.params), valid_form(method, path, world), csrf=False)
        if r.status_code != 403 or await snapshot(world.org.id) != before:
            problems.append((path, r.status_code))
    assert problems == []


# -- IDOR ---------------------------------------------------------------------------------------

ID_PARAMS = ("agent_id", "workflow_id", "connection_id", "team_id", "membership_id")


async def test_every_id_of_another_org_is_404_and_changes_nothing(app, make_world, su, client_for, snapshot):
    """Org A's owner, on A's URLs, with each id replaced by the matching id of org B."""
    a = await make_world()
    b = await make_world()
    c = await client_for(a.users["owner"])
    problems, checked = [], 0
    for method, path in feature_routes(app):
        params = [p for p in ID_PARAMS if "{" + p + "}" in path]
        for param in params:
            values = {**a.params, param: b.params[param]}
            before_a, before_b = await snapshot(a.org.id), await snapshot(b.org.id)
            url = fill(path, values)
            r = await (c.get(url) if method == "GET" else c.post(url, valid_form(method, path, a)))
            checked += 1
            if r.status_code != 404:
                problems.append((method, path, param, r.status_code))
            if await snapshot(a.org.id) != before_a or await snapshot(b.org.id) != before_b:
                problems.append((method, path, param, "data changed"))
    assert checked >= 25  # every id-bearing route, once per id in it
    assert problems == []


@pytest.mark.parametrize("bad", ["not-a-uuid", "1", "00000000-0000-0000-0000-000000000000", "%20", "x" * 200, "' OR 1=1 --"])
async def test_malformed_or_unknown_ids_are_the_same_404(app, make_world, su, client_for, bad):
    world = await make_world()
    c = await client_for(world.users["owner"])
    reference = await c.get(f"/orgs/{world.org.slug}/agents/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    for method, path in feature_routes(app):
        if not any("{" + p + "}" in path for p in ID_PARAMS):
            continue
        values = {**world.params, **{p: bad for p in ID_PARAMS}}
        url = fill(path, values)
        r = await (c.get(url) if method == "GET" else c.post(url, valid_form(method, path, world)))
        assert r.status_code == 404, (method, url, r.status_code)
        assert main_of(r) == main_of(reference), (method, url)
    assert reference.status_code == 404 and "find that page" in main_of(reference)


async def test_ids_of_another_org_in_forms_are_404_too(make_world, su, client_for, snapshot):
    a = await make_world()
    b = await make_world()
    c = await client_for(a.users["owner"])
    before_a, before_b = await snapshot(a.org.id), await snapshot(b.org.id)
    base = f"/orgs/{a.org.slug}"
    form = {"name": "Sneaky", "agent_id": str(b.agent_used), "definition": json.dumps(DEFINITION)}
    assert (await c.post(f"{base}/workflows", form)).status_code == 404
    assert (await c.post(f"{base}/workflows/{a.workflow}/edit", form)).status_code == 404
    r = await c.post(f"{base}/teams/{a.team}/members", {"membership_id": str(b.memberships["member"])})
    assert r.status_code == 404
    r = await c.post(f"{base}/teams/{a.team}/members", {"email": b.users["member"].email})
    assert r.status_code == 422 and "Nobody in this organization" in r.text
    assert await snapshot(a.org.id) == before_a and await snapshot(b.org.id) == before_b


async def test_injected_org_fields_are_ignored(make_world, su, client_for):
    a = await make_world()
    b = await make_world()
    c = await client_for(a.users["member"])
    r = await c.post(
        f"/orgs/{a.org.slug}/agents",
        {"name": "Injected", "model": "gpt-4.1", "org_id": str(b.org.id), "org": b.org.slug, "role": "owner"},
        headers={"X-Org-Id": str(b.org.id)},
    )
    assert r.status_code == 303
    assert await su.fetchval("SELECT org_id FROM agent WHERE name = 'Injected'") == a.org.id


# -- the database refuses cross-org references --------------------------------------------------


async def _as_tenant(conn, org_id, sql: str, *args):
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.org_id', $1, true)", str(org_id))
        return await conn.execute(sql, *args)


async def test_database_refuses_cross_org_references_as_the_app_role(app_conn, make_world, su):
    a = await make_world()
    b = await make_world()
    refused = [
        # a workflow of A run by B's agent
        ("INSERT INTO workflow (org_id, name, agent_id) VALUES ($1, 'x', $2)", a.org.id, b.agent_used),
        ("UPDATE workflow SET agent_id = $2 WHERE org_id = $1", a.org.id, b.agent_used),
        # a team of A with B's member, or B's team with A's member
        ("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", a.org.id, a.team, b.memberships["owner"]),
        ("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", a.org.id, b.team, a.memberships["owner"]),
        ("UPDATE team_member SET membership_id = $2 WHERE org_id = $1", a.org.id, b.memberships["member"]),
    ]
    for sql, *args in refused:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await _as_tenant(app_conn, a.org.id, sql, *args)
    # and a row can't be written into another org at all (row-level security)
    for sql, *args in [
        ("INSERT INTO agent (org_id, name, model) VALUES ($1, 'x', 'm')", b.org.id),
        ("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", b.org.id, b.team, b.memberships["owner"]),
    ]:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_tenant(app_conn, a.org.id, sql, *args)
    # the superuser is refused by the constraint too: it is the schema, not the policy
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await su.execute("INSERT INTO workflow (org_id, name, agent_id) VALUES ($1, 'y', $2)", a.org.id, b.agent_used)


async def test_names_are_unique_per_org_case_insensitively_but_free_across_orgs(su, make_org):
    a, b = await make_org(), await make_org()
    await add_agent(su, a.id, "Support Bot")
    await add_agent(su, b.id, "Support Bot")  # another org: fine
    with pytest.raises(asyncpg.UniqueViolationError):
        await add_agent(su, a.id, "support bot")
    await add_team(su, a.id, "Ops")
    with pytest.raises(asyncpg.UniqueViolationError):
        await add_team(su, a.id, "OPS")


async def test_removing_someone_from_the_org_removes_them_from_its_teams(make_world, su):
    world = await make_world()
    assert await su.fetchval("SELECT count(*) FROM team_member WHERE membership_id = $1", world.team_member) == 1
    await su.execute("DELETE FROM membership WHERE id = $1", world.team_member)
    assert await su.fetchval("SELECT count(*) FROM team_member WHERE membership_id = $1", world.team_member) == 0
    assert await su.fetchval("SELECT count(*) FROM team WHERE id = $1", world.team) == 1


async def test_deleting_the_org_cascades_through_every_resource(make_world, su):
    world = await make_world()
    await su.execute("DELETE FROM organization WHERE id = $1", world.org.id)
    for table in ("agent", "workflow", "connection", "team", "team_member"):
        assert await su.fetchval(f"SELECT count(*) FROM {table} WHERE org_id = $1", world.org.id) == 0, table
