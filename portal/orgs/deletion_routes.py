"""Deleting the organization: the settings page's danger zone posts here."""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.orgs import deletion
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import field, read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for


@post("/delete", name="orgs.delete", opt={"permission": Perm.MANAGE_ORG, "reauthenticate": True}, status_code=303)
async def org_delete(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        name = await deletion.delete_org(org, confirm=field(form, "confirm"), password=form.get("password", ""))
    except Invalid as exc:
        return await page(
            request,
            "orgs/delete.html",
            block="danger",
            status=HTTP_422_UNPROCESSABLE_ENTITY,
            delete_form={"confirm": field(form, "confirm")},
            delete_errors=exc.field_errors,
        )
    return redirect(request, url_for(request, "orgs.list"), f"“{name}” and all of its data were permanently deleted.")


ROUTES: list = []
ORG_ROUTES = [org_delete]
