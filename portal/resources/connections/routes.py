"""A connection's own page beyond the shared ones: replacing or removing its secret.

The submitted secret is never drawn back into a page, not even one that refuses it.
"""

from __future__ import annotations

from litestar import Response, post
from litestar.plugins.htmx import HTMXRequest
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.params import parse_id
from portal.resources.connections.service import CONNECTIONS, replace_secret
from portal.resources.web import detail_page, fragment
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import redirect
from portal.web.urls import url_for


@post("/connections/{connection_id:str}/secret", name="connections.secret", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def connection_secret(request: HTMXRequest, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    key = parse_id(connection_id)
    form = await read_form(request)
    clearing = form.get("action") == "clear"
    part = "secret" if fragment(request, "part") else None
    try:
        connection = await replace_secret(org, key, form)
    except Invalid as exc:
        connection = await CONNECTIONS.get(org.scope, key)
        return await detail_page(
            request, org, CONNECTIONS, connection, part=part, status=HTTP_422_UNPROCESSABLE_ENTITY, errors=exc.field_errors
        )
    message = "Secret removed." if clearing else "Secret replaced. The previous value is gone."
    if part:
        return await detail_page(request, org, CONNECTIONS, connection, part=part, message=message)
    return redirect(request, url_for(request, "connections.detail", connection_id=key), message)


ROUTES = [connection_secret]
