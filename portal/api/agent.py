"""``/api/v1/orgs/{slug}/agent``: the API of an agent's own token (SPEC §11, SECURITY 41).

A token issued to an agent acts as that agent and carries one permission, ``agent.self``, that
no person's role has and none can grant; every other API route answers it 403. With it, the
agent reads itself, its workflows and the non-secret config of the connections those workflows
use (a step's ``connection`` names one, by name or id), and records its own ``agent.*`` events in
the audit log. It never sees another agent, a secret, or another org (``portal.api.auth``: the
token's org is the only one it can enter; a paused agent's tokens are refused, a deleted one's
revoked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from portal import clock
from portal.api import common, limits
from portal.api.agents import Agent
from portal.api.common import JSONObject
from portal.api.resource import IdempotencyKey, Limit
from portal.api.workflows import Workflow, workflow
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.audit.redact import credential_in
from portal.errors import Invalid, NotFound
from portal.resources.agents.service import AGENTS
from portal.resources.common import JSONProblem, parse_json_object
from portal.resources.connections.service import shown_config
from portal.resources.workflows.service import WORKFLOWS
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.problems import documented

SELF = {"permission": Perm.AGENT}
# What an agent may record of itself: its runs, its tool calls, its requests for approval. Never
# an action of the portal's own (``agent.created`` …): those are written by the portal alone.
EVENTS = ("run_started", "run_finished", "run_failed", "tool_called", "approval_requested")
EventName = Literal["run_started", "run_finished", "run_failed", "tool_called", "approval_requested"]
PAYLOAD_MAX_CHARS, PAYLOAD_MAX_DEPTH = 4_000, 6
CONNECTIONS_SHOWN = 200


class AgentConnection(msgspec.Struct):
    id: UUID
    name: str
    kind: str
    config: JSONObject  # the non-secret configuration; the secret never leaves the portal


class AgentConnections(msgspec.Struct):
    items: list[AgentConnection]


class WorkflowPage(msgspec.Struct):
    items: list[Workflow]
    next: str | None


class NewEvent(msgspec.Struct):
    action: EventName  # recorded as agent.<action>
    workflow_id: UUID | None = None  # the workflow the run belongs to (one of the agent's)
    payload: JSONObject = {}  # a small JSON object (at most 4,000 characters, nothing that looks like a credential)


class Event(msgspec.Struct):
    action: str
    target_type: str
    target_id: UUID
    payload: JSONObject
    at: datetime


def _agent_id(org: OrgContext) -> UUID:
    assert org.agent_id is not None  # only an agent's token holds Perm.AGENT
    return org.agent_id


@get("/agent", name="api.agent.self", opt=SELF, responses=documented())
async def me(org: NamedDependency[OrgContext]) -> Agent:
    """The agent this token acts as."""
    return common.of_row(Agent, await AGENTS.get(org.scope, _agent_id(org)))


@get("/agent/workflows", name="api.agent.workflows", opt=SELF, responses=documented())
async def my_workflows(request: Request, org: NamedDependency[OrgContext], limit: Limit = common.DEFAULT_LIMIT,
                       after: FromQuery[str | None] = None) -> WorkflowPage:
    """The workflows this agent runs, in name order, a page at a time."""
    rows, cursor = await WORKFLOWS.keyset(org.scope, after=after, limit=limit, only=("agent_id", _agent_id(org)))
    return WorkflowPage([workflow(r) for r in rows], common.next_link(request, cursor, limit))


@get("/agent/connections", name="api.agent.connections", opt=SELF, responses=documented())
async def my_connections(org: NamedDependency[OrgContext]) -> AgentConnections:
    """The connections this agent's workflows use (a step's ``connection``: a connection's name or
    id), with their non-secret config; the first 200 by name."""
    rows = await org.scope.fetch(
        """SELECT c.id, c.name, c.kind, c.config FROM connection c
           WHERE c.org_id = {org} AND EXISTS (
               SELECT 1 FROM workflow w
               CROSS JOIN LATERAL jsonb_array_elements(
                   CASE jsonb_typeof(w.definition->'steps') WHEN 'array' THEN w.definition->'steps' ELSE '[]' END) step
               WHERE w.org_id = {org} AND w.agent_id = $1 AND step->>'connection' IN (c.name, c.id::text))
           ORDER BY lower(c.name), c.id LIMIT $2""",
        _agent_id(org), CONNECTIONS_SHOWN,
    )
    return AgentConnections([AgentConnection(r["id"], r["name"], r["kind"], shown_config(r["config"])) for r in rows])


def _payload(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        parse_json_object(msgspec.json.encode(payload).decode(), max_chars=PAYLOAD_MAX_CHARS, max_depth=PAYLOAD_MAX_DEPTH, example='{"run_id": "r-42"}')
    except JSONProblem as exc:
        raise Invalid(str(exc), field_errors={"payload": str(exc)}) from None
    if path := credential_in(payload):
        message = f"“{path}” looks like a credential: audit events must not hold secrets."
        raise Invalid(message, field_errors={"payload": message})
    return payload


@post("/agent/events", name="api.agent.events", opt=SELF, status_code=201, responses=documented(409, 422))
async def record_event(
    request: Request, org: NamedDependency[OrgContext], data: JSONBody[NewEvent], idempotency_key: IdempotencyKey = None
) -> Response[Event]:
    """Record an event of this agent's (``agent.run_started`` …) in the organization's audit log,
    about one of its workflows or about itself. With ``Idempotency-Key``, a retry records nothing new."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    payload = _payload(data.payload)
    agent = await AGENTS.get(org.scope, _agent_id(org))
    target: tuple[str, UUID, str] = ("agent", agent["id"], agent["name"])
    if data.workflow_id is not None:
        row = await org.scope.fetchrow(
            "SELECT w.id, w.name FROM workflow w WHERE w.org_id = {org} AND w.id = $1 AND w.agent_id = $2", data.workflow_id, agent["id"]
        )
        if row is None:  # not this agent's workflow: as if it did not exist
            raise NotFound()
        target = ("workflow", row["id"], row["name"])
    action = Action(f"agent.{data.action}")
    await audit.record(org, action, target=target, after=payload)
    body = msgspec.json.encode(Event(action.value, target[0], target[1], payload, clock.now()))
    await limits.remember(org, request, 201, body, {})
    return Response(body, status_code=201, media_type="application/json")  # type: ignore[return-value]


ROUTES = [me, my_workflows, my_connections, record_event]
