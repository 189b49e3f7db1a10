"""``/api/v1/orgs/{slug}/agents``: the agents resource of ``portal.resources`` as JSON.

The same declaration (``AGENTS``), the same validation, permissions, scoping and audit events as
the pages; lists are keyset pages (``limit`` ≤ 200, ``next``), updates are ``PATCH`` with an
optional ``If-Match`` (412 on a stale version).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from msgspec import Meta
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from portal.errors import DomainError
from portal.params import parse_id, search_text
from portal.api import limits
from portal.web.problems import documented
from portal.resources import common
from portal.resources.agents.service import AGENTS, MODEL_RE
from portal.tenancy.context import OrgContext

MAX_LIMIT = 200


class PreconditionFailed(DomainError):
    status_code = 412
    title = "Precondition failed"


# The same limits as the pages' fields (portal.resources), stated for the OpenAPI document, and
# checked by msgspec as the body is decoded: no control characters, not blank.
_BLANK = common.SPACE.replace("\t", "").replace("\n", "").replace("\r", "").replace("\x0b", "").replace("\x0c", "")
Name = Annotated[str, Meta(
    min_length=1, max_length=common.NAME_MAX, pattern=f"^[^{common.CONTROL_SINGLE_LINE}]*[^{common.CONTROL_SINGLE_LINE}{_BLANK}][^{common.CONTROL_SINGLE_LINE}]*$",
    description="Unique in the organization (case-insensitive); no control characters",
)]
Model = Annotated[str, Meta(min_length=1, max_length=100, pattern=MODEL_RE.pattern, description="The model identifier, e.g. claude-sonnet-4-5")]
Description = Annotated[str, Meta(max_length=common.DESCRIPTION_MAX, pattern=f"^[^{common.CONTROL}]*$", description="No control characters but tab and newlines")]
Status = Literal["active", "paused"]


class Agent(msgspec.Struct):
    id: UUID
    name: str
    description: str
    model: str
    status: Status
    workflows: int
    created_at: datetime
    updated_at: datetime


class AgentCreate(msgspec.Struct):  # other fields are ignored (an org_id in the body, say)
    name: Name
    model: Model
    description: Description = ""
    status: Status = "active"


class AgentUpdate(msgspec.Struct, omit_defaults=True):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    model: Model | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET


class AgentPage(msgspec.Struct):
    items: list[Agent]
    next: str | None  # the next page's URL, or null on the last page


def _agent(row: Any) -> Agent:
    return Agent(**{f: row[f] for f in Agent.__struct_fields__})


def etag(row: Any) -> str:
    return '"' + hashlib.sha256(f"{row['id']}:{row['updated_at'].isoformat()}".encode()).hexdigest()[:32] + '"'


def _form(values: msgspec.Struct) -> dict[str, str]:
    return {k: v for k, v in msgspec.structs.asdict(values).items() if v is not msgspec.UNSET}


@get("/agents", name="api.agents.list", opt={"permission": AGENTS.view_permission}, responses=documented())
async def list_agents(
    request: Request,
    org: NamedDependency[OrgContext],
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 50,
    after: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
) -> AgentPage:
    """The org's agents in name order, a page at a time."""
    text = search_text(q)
    rows, cursor = await AGENTS.keyset(org.scope, after=after, limit=limit, q=text)
    following = None
    if cursor is not None:
        query = {"limit": limit, "after": cursor, **({"q": text} if text else {})}
        following = f"{request.url.path}?{urlencode(query)}"
    return AgentPage([_agent(r) for r in rows], following)


@post("/agents", name="api.agents.create", opt={"permission": AGENTS.manage_permission}, status_code=201, responses=documented(409, 422))
async def create_agent(
    request: Request,
    org: NamedDependency[OrgContext],
    data: JSONBody[AgentCreate],
    idempotency_key: Annotated[str | None, HeaderParameter(header="Idempotency-Key", min_length=1, max_length=limits.KEY_MAX)] = None,
) -> Response[Agent]:
    """Create an agent. With ``Idempotency-Key``, a retry of the same request creates nothing and
    gets the first response again."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    new_id = await AGENTS.create(org, _form(data))
    row = await AGENTS.get(org.scope, new_id)
    headers = {"Location": f"{request.url.path}/{new_id}", "ETag": etag(row)}
    body = msgspec.json.encode(_agent(row))
    await limits.remember(org, request, 201, body, headers)
    return Response(body, status_code=201, media_type="application/json", headers=headers)  # type: ignore[return-value]


@get("/agents/{agent_id:str}", name="api.agents.get", opt={"permission": AGENTS.view_permission}, responses=documented())
async def get_agent(org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response[Agent]:
    row = await AGENTS.get(org.scope, parse_id(agent_id))
    return Response(_agent(row), headers={"ETag": etag(row)})


@patch("/agents/{agent_id:str}", name="api.agents.update", opt={"permission": AGENTS.manage_permission}, responses=documented(409, 412, 422))
async def update_agent(
    request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str], data: JSONBody[AgentUpdate]
) -> Response[Agent]:
    """Change some fields. With ``If-Match``, only if the agent is still the version it names."""
    key = parse_id(agent_id)
    current = await AGENTS.get(org.scope, key, lock=True)
    wanted = request.headers.get("if-match")
    if wanted is not None and wanted.strip() not in ("*", etag(current)):
        raise PreconditionFailed("The agent changed since you read it: read it again, then apply your change.")
    form = {**AGENTS.form_of(current), **_form(data)}
    await AGENTS.update(org, key, form)
    row = await AGENTS.get(org.scope, key)
    return Response(_agent(row), headers={"ETag": etag(row)})


@delete("/agents/{agent_id:str}", name="api.agents.delete", opt={"permission": AGENTS.manage_permission}, status_code=204, responses=documented(409))
async def delete_agent(org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> None:
    await AGENTS.delete(org, parse_id(agent_id))


ROUTES = [list_agents, create_agent, get_agent, update_agent, delete_agent]
