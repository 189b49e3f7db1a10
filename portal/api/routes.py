"""The JSON API's routes (mounted under ``/api/v1/orgs/{slug}`` by ``portal.app``) and the
API tokens page (``/orgs/{slug}/api-tokens``)."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.plugins.htmx import HTMXRequest
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.api import agent, agents, connections, docs, orgdata, people, teams, tokens, workflows
from portal.errors import Invalid
from portal.params import parse_id
from portal.resources.agents.service import AGENTS
from portal.resources.web import detail_page
from portal.roles import service as roles
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for

API_ROUTES = [*agent.ROUTES, *agents.ROUTES, *workflows.ROUTES, *connections.ROUTES, *teams.ROUTES, *people.ROUTES, *orgdata.ROUTES]

TOKENS = "api/tokens.html"
MANAGE = {"permission": Perm.MANAGE_MEMBERS}


async def _tokens_page(request: Request, org: OrgContext, **extra) -> Response:
    return await page(
        request, TOKENS, tokens=await tokens.list_tokens(org), role_choices=[(c.key, c.label) for c in await roles.choices(org)],
        default_days=tokens.DEFAULT_DAYS, max_days=tokens.MAX_DAYS, **{"form": {"role": "member"}, "errors": {}, **extra},
    )


@get("/api-tokens", name="api_tokens.list", opt=MANAGE)
async def token_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _tokens_page(request, org)


@post("/api-tokens", name="api_tokens.create", opt=MANAGE, status_code=200)
async def token_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        _, token = await tokens.create_token(org, form)
    except Invalid as exc:
        return await _tokens_page(request, org, status=HTTP_422_UNPROCESSABLE_ENTITY, form=form, errors=exc.field_errors)
    # Shown once, on this response only (no redirect: the token must never sit in a URL or a flash cookie).
    return await _tokens_page(request, org, new_token=token, message="Token created. Copy it now: it won't be shown again.")


@post("/api-tokens/{token_id:str}/revoke", name="api_tokens.revoke", opt=MANAGE, status_code=303)
async def token_revoke(request: Request, org: NamedDependency[OrgContext], token_id: FromPath[str]) -> Response:
    name = await tokens.revoke_token(org, parse_id(token_id))
    return redirect(request, url_for(request, "api_tokens.list"), f"Token “{name}” revoked. Programs using it get 401 from now on.")


# -- an agent's tokens, on the agent's page (SPEC §11) ------------------------------------------------
AGENT_MANAGE = {"permission": AGENTS.manage_permission}


@post("/agents/{agent_id:str}/tokens", name="agents.tokens.create", opt=AGENT_MANAGE, status_code=200)
async def agent_token_create(request: HTMXRequest, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    key = parse_id(agent_id)
    agent = await AGENTS.get(org.scope, key, lock=True)
    form = await read_form(request)
    try:
        _, token = await tokens.create_agent_token(org, agent, form)
    except Invalid as exc:
        return await detail_page(
            request, org, AGENTS, agent, status=HTTP_422_UNPROCESSABLE_ENTITY, token_form=form, token_errors=exc.field_errors
        )
    # Shown once, on this response only, like an org token.
    return await detail_page(
        request, org, AGENTS, agent, new_token=token, message="Agent token created. Copy it now: it won't be shown again."
    )


@post("/agents/{agent_id:str}/tokens/{agent_token_id:str}/revoke", name="agents.tokens.revoke", opt=AGENT_MANAGE, status_code=303)
async def agent_token_revoke(
    request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str], agent_token_id: FromPath[str]
) -> Response:
    key = parse_id(agent_id)
    agent = await AGENTS.get(org.scope, key, lock=True)
    name = await tokens.revoke_agent_token(org, agent, parse_id(agent_token_id))
    return redirect(
        request, url_for(request, "agents.detail", agent_id=key) + "#agent-tokens", f"Token “{name}” revoked. The agent can't use it any more."
    )


ROUTES = docs.ROUTES  # public: the API reference
ORG_ROUTES = [token_list, token_create, token_revoke, agent_token_create, agent_token_revoke]
