"""The org list, org creation, and the org dashboard."""

from __future__ import annotations

from litestar import Request, Response, get, post, route
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.orgs import service
from portal.tenancy.context import OrgContext, client_ip
from portal.tenancy.permissions import Perm
from portal.web.forms import field, read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for


@get("/", name="orgs.home")
async def home(request: Request) -> Response:
    if request.scope.get("user"):
        return redirect(request, url_for(request, "orgs.list"))
    return await page(request, "home.html")


@route("/healthz", name="orgs.healthz", http_method=["GET", "HEAD"], media_type="text/plain")
async def healthz() -> str:
    return "ok"


@get("/orgs", name="orgs.list")
async def org_list(request: Request) -> Response:
    return await page(request, "orgs/list.html", form={}, errors={})


@post("/orgs", name="orgs.create", status_code=303)
async def org_create(request: Request) -> Response:
    form = await read_form(request)
    user = request.scope["user"]
    slug = field(form, "slug") or service.suggest_slug(field(form, "name"))
    try:
        slug = await service.create_org(
            user_id=user.id, user_email=user.email, name=field(form, "name"), slug=slug, ip=client_ip(request.scope)
        )
    except Invalid as exc:
        return await page(
            request, "orgs/list.html", status=HTTP_422_UNPROCESSABLE_ENTITY, form=form, errors=exc.field_errors, open_create=True
        )
    return redirect(request, url_for(request, "orgs.dashboard", slug=slug), "Organization created. You are its owner.")


@get("", name="orgs.dashboard", opt={"permission": Perm.VIEW})
async def dashboard(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await page(request, "orgs/dashboard.html", **await service.dashboard(org))


@get("/settings", name="orgs.settings", opt={"permission": Perm.MANAGE_ORG})
async def settings_page(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await page(request, "orgs/settings.html", form={"name": org.org.name}, errors={})


@post("/settings", name="orgs.settings_save", opt={"permission": Perm.MANAGE_ORG}, status_code=303)
async def settings_save(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        await service.rename_org(org, field(form, "name"))
    except Invalid as exc:
        return await page(request, "orgs/settings.html", status=HTTP_422_UNPROCESSABLE_ENTITY, form=form, errors=exc.field_errors)
    return redirect(request, url_for(request, "orgs.settings"), "Settings saved.")


ROUTES = [home, healthz, org_list, org_create]
ORG_ROUTES = [dashboard, settings_page, settings_save]
