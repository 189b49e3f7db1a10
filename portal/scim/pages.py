"""``/orgs/{slug}/scim``: the owner's page for the org's SCIM tokens, with the base URL to paste
into the identity provider."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.api import tokens
from portal.config import get_settings
from portal.errors import Invalid
from portal.params import parse_id
from portal.scim.service import retry_welcomes, undelivered_welcomes
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for

OWNER = {"permission": Perm.MANAGE_ORG}


async def _page(request: Request, org: OrgContext, **extra) -> Response:
    base_url = get_settings().base_url.rstrip("/") + f"/scim/v2/orgs/{org.org.slug}"
    return await page(
        request, "scim/tokens.html", tokens=await tokens.list_scim_tokens(org), base_url=base_url,
        undelivered=await undelivered_welcomes(org),
        default_days=tokens.DEFAULT_DAYS, max_days=tokens.MAX_DAYS, **{"form": {}, "errors": {}, **extra},
    )


@get("/scim", name="scim.tokens", opt=OWNER)
async def scim_tokens(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _page(request, org)


@post("/scim", name="scim.tokens.create", opt=OWNER, status_code=200)
async def scim_token_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        _, token = await tokens.create_scim_token(org, form)
    except Invalid as exc:
        return await _page(request, org, status=HTTP_422_UNPROCESSABLE_ENTITY, form=form, errors=exc.field_errors)
    return await _page(request, org, new_token=token, message="SCIM token created. Copy it now: it won't be shown again.")


@post("/scim/{scim_token_id:str}/revoke", name="scim.tokens.revoke", opt=OWNER, status_code=303)
async def scim_token_revoke(request: Request, org: NamedDependency[OrgContext], scim_token_id: FromPath[str]) -> Response:
    name = await tokens.revoke_scim_token(org, parse_id(scim_token_id))
    return redirect(request, url_for(request, "scim.tokens"), f"SCIM token “{name}” revoked. Your identity provider gets 401 from now on.")


@post("/scim/retry-welcomes", name="scim.retry_welcomes", opt=OWNER, status_code=303)
async def scim_retry_welcomes(request: Request, org: NamedDependency[OrgContext]) -> Response:
    """Send a fresh welcome (a new link) to each provisioned person whose welcome was not delivered."""
    count = await retry_welcomes(org)
    message = f"A new welcome email is on its way to {count} {'person' if count == 1 else 'people'}." if count else "No welcome email was waiting to be retried."
    return redirect(request, url_for(request, "scim.tokens"), message)


ORG_ROUTES = [scim_tokens, scim_token_create, scim_token_revoke, scim_retry_welcomes]
