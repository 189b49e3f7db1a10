"""``/scim/v2/orgs/{slug}/…``: the org's SCIM service (RFC 7644), for SCIM tokens only.

One handler takes every SCIM path and hands it to scim2-server's protocol steps
(``AsyncScimHandler``) over the org's data (``portal.scim.service.OrgStorage``), inside the
request's transaction entered from the token (``portal.api.auth``, the same as the JSON API):
the token's org only, ``scim.provision`` only. Answers are ``application/scim+json``; errors are
SCIM error bodies, with ``scimType`` where one applies.
"""

from __future__ import annotations

import json

from litestar import Request, Response, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from scim2_server.handler import AsyncScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse

from portal.config import get_settings
from portal.db.engine import database_down
from portal.errors import DomainError, TooManyRequests, Unavailable
from portal.scim.models import PEOPLE_PROVIDER, PROVIDER
from portal.scim.service import OrgStorage, PortalService, queue_set_password_links
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.errors import DATABASE_DOWN

MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2/orgs/{slug:str}"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def _response(resp: ScimResponse) -> Response:
    body = b"" if resp.body is None else json.dumps(resp.body).encode()
    headers = {k: v for k, v in dict(resp.headers).items() if k.lower() != "content-type"}
    return Response(body, status_code=int(resp.status), headers=headers, media_type=MEDIA_TYPE)


def error(status: int, detail: str, *, scim_type: str | None = None, headers: dict[str, str] | None = None) -> Response:
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail, **({"scimType": scim_type} if scim_type else {})}
    return Response(json.dumps(body).encode(), status_code=status, media_type=MEDIA_TYPE, headers=headers or {})


@route("/{path:path}", name="scim.endpoint", opt={"permission": Perm.SCIM},
       http_method=[HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE])
async def scim_endpoint(request: Request, org: NamedDependency[OrgContext], path: FromPath[str]) -> Response:
    # Agents only for a token its owner allowed them (``api_token.manages_agents``); for the
    # others the service has no Agents at all, in discovery too.
    agents = bool(await org.scope.fetchval("SELECT manages_agents FROM api_token WHERE org_id = {org} AND id = $1", org.token_id))
    provider = PROVIDER if agents else PEOPLE_PROVIDER
    service = PortalService(provider)
    base = get_settings().base_url.rstrip("/") + f"/scim/v2/orgs/{org.org.slug}"
    scim_request = ScimRequest(
        method=request.method, base_url=base, path=path.lstrip("/"), query=dict(request.query_params),
        headers=list(request.headers.items()), body=await request.body(),
    )
    storage = OrgStorage(org, writing=request.method != "GET", replacing=request.method == "PUT", agents=agents)
    with provider:
        try:
            answer = await AsyncScimHandler(service, storage).handle(scim_request)
        except Exception as exc:  # a SCIMException is its error body; anything else a 500 body, logged by scim2-server
            if database_down(exc):  # PostgreSQL restarting or out of reach: a 503 the IdP retries, as on every page
                raise Unavailable(DATABASE_DOWN, retry_after=5) from exc
            answer = service.error_response(exc)
    if int(answer.status) >= 400:
        raise ScimAnswer(answer)  # the request's transaction rolls back
    if storage.new_accounts:  # queued in this request's transaction: mailed once it commits
        await queue_set_password_links(org, storage.new_accounts)
    return _response(answer)


class ScimAnswer(Exception):
    """An error answer of the protocol, raised so the transaction rolls back."""

    def __init__(self, answer: ScimResponse) -> None:
        self.answer = answer


def handle_answer(request: Request, exc: ScimAnswer) -> Response:
    return _response(exc.answer)


def handle_domain(request: Request, exc: DomainError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="praesidia"'} if exc.status_code == 401 else {}
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    detail = "No such organization for this token." if exc.status_code == 404 else exc.message
    return error(exc.status_code, detail, headers=headers)


def handle_http(request: Request, exc: HTTPException) -> Response:
    return error(exc.status_code, str(exc.detail or "The request could not be handled."))


EXCEPTION_HANDLERS = {ScimAnswer: handle_answer, DomainError: handle_domain, HTTPException: handle_http}
SCIM_ROUTES = [scim_endpoint]
