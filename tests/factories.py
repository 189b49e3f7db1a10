"""Shared helpers for the resource, billing and audit tests (no tests here): an org with one person
of every role and one of each resource, the live list of this feature's routes, and a statement
counter."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field


from tests.conftest import unique

ROLES = ("owner", "billing_admin", "compliance_officer", "member")
RESOURCE_SECTIONS = ("agents", "workflows", "connections", "teams")
SECTIONS = (*RESOURCE_SECTIONS, "billing", "audit", "audit.csv", "access-report", "access-report.csv")
ORG_PATH = "/orgs/{slug}/"
DEFINITION = {"trigger": {"type": "manual"}, "steps": [{"id": "draft", "type": "prompt", "prompt": "Say hello"}]}


@dataclass
class World:
    """One org: a person per role, an agent used by a workflow, a free agent, a connection with a
    secret, a team with one member."""

    org: object
    users: dict  # role -> User
    memberships: dict  # role -> membership id
    agent_used: uuid.UUID
    agent_free: uuid.UUID
    workflow: uuid.UUID
    connection: uuid.UUID
    team: uuid.UUID
    team_member: uuid.UUID  # membership id of the person in the team
    extra: dict = field(default_factory=dict)

    def ids(self) -> dict[str, str]:
        """Values for the path parameters of this feature's routes."""
        return {
            "slug": self.org.slug,
            "agent_id": str(self.agent_free),
            "workflow_id": str(self.workflow),
            "connection_id": str(self.connection),
            "team_id": str(self.team),
            "membership_id": str(self.team_member),
        }


async def add_agent(su, org_id, name: str | None = None, *, status: str = "active") -> uuid.UUID:
    return await su.fetchval(
        "INSERT INTO agent (org_id, name, model, status) VALUES ($1, $2, 'claude-sonnet-4-5', $3) RETURNING id",
        org_id, name or unique("agent"), status,
    )


async def add_workflow(su, org_id, agent_id, name: str | None = None) -> uuid.UUID:
    return await su.fetchval(
        "INSERT INTO workflow (org_id, name, definition, agent_id) VALUES ($1, $2, $3::jsonb, $4) RETURNING id",
        org_id, name or unique("workflow"), json.dumps(DEFINITION), agent_id,
    )


async def add_connection(su, org_id, name: str | None = None) -> uuid.UUID:
    return await su.fetchval(
        """INSERT INTO connection (org_id, name, kind, config, secret_ciphertext, secret_set_at)
           VALUES ($1, $2, 'slack', '{"workspace": "acme"}', 'v1.not-a-real-ciphertext', now()) RETURNING id""",
        org_id, name or unique("connection"),
    )


async def add_team(su, org_id, name: str | None = None, members: tuple = ()) -> uuid.UUID:
    team_id = await su.fetchval("INSERT INTO team (org_id, name) VALUES ($1, $2) RETURNING id", org_id, name or unique("team"))
    for membership_id in members:
        await su.execute("INSERT INTO team_member (org_id, team_id, membership_id) VALUES ($1, $2, $3)", org_id, team_id, membership_id)
    return team_id


async def make_world(su, make_org, make_member) -> World:
    org = await make_org()
    users = {"owner": org.owner}
    for role in ROLES[1:]:
        users[role] = await make_member(org, role)
    memberships = {
        role: await su.fetchval("SELECT id FROM membership WHERE org_id = $1 AND user_id = $2", org.id, user.id)
        for role, user in users.items()
    }
    agent_used = await add_agent(su, org.id)
    agent_free = await add_agent(su, org.id)
    workflow = await add_workflow(su, org.id, agent_used)
    connection = await add_connection(su, org.id)
    team = await add_team(su, org.id, members=(memberships["member"],))
    return World(org, users, memberships, agent_used, agent_free, workflow, connection, team, memberships["member"])


def feature_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route of this feature, read from the live route table."""
    out = []
    for route in app.routes:
        path = route.path_format
        if not path.startswith(ORG_PATH):
            continue
        section = path[len(ORG_PATH):].split("/")[0]
        if section not in SECTIONS:
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                out.append((method, path))
    return sorted(set(out))


def handler_for(app, method: str, path: str):
    for route in app.routes:
        if route.path_format == path:
            for handler in route.route_handlers:
                if method in handler.http_methods:
                    return handler
    raise KeyError((method, path))


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def events(su, org_id, action: str | None = None) -> list:
    if action:
        return await su.fetch("SELECT * FROM audit_event WHERE org_id = $1 AND action = $2 ORDER BY created_at, id", org_id, action)
    return await su.fetch("SELECT * FROM audit_event WHERE org_id = $1 ORDER BY created_at, id", org_id)
