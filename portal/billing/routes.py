"""Billing page: owners and billing admins see and change the org's billing settings."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.billing import service
from portal.errors import Invalid
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for

TEMPLATE = "billing/billing.html"


@get("/billing", name="billing.page", opt={"permission": Perm.BILLING})
async def billing_page(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await page(request, TEMPLATE, plans=service.PLANS, errors={}, **await service.billing_page(org))


@post("/billing", name="billing.save", opt={"permission": Perm.BILLING}, status_code=303)
async def billing_save(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        changed = await service.update_billing(org, form)
    except Invalid as exc:
        data = await service.billing_page(org)
        return await page(
            request, TEMPLATE, status=HTTP_422_UNPROCESSABLE_ENTITY, plans=service.PLANS, errors=exc.field_errors,
            settings=data["settings"], form=form,
        )
    return redirect(request, url_for(request, "billing.page"), "Billing settings saved." if changed else "No changes to save.")


ORG_ROUTES = [billing_page, billing_save]
