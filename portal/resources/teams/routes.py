"""Team pages: list, create, detail with members, edit, delete; add and remove members (htmx
swaps the member list in place; without JavaScript, plain forms and a redirect)."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.resources.common import parse_id
from portal.resources.teams import service
from portal.resources.web import fragment, list_params, removed
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import is_htmx, page, redirect

LIST = "resources/teams.html"
FORM = "resources/team_form.html"
DETAIL = "resources/team.html"


def _base(org: OrgContext) -> str:
    return f"/orgs/{org.org.slug}/teams"


async def _form_page(request: Request, *, form: dict, errors: dict, team=None, status: int = 200) -> Response:
    return await page(request, FORM, status=status, form=form, errors=errors, team=team)


async def _members_changed(request: Request, org: OrgContext, team_id, message: str) -> Response:
    if block := fragment(request, "members"):
        data = await service.team_detail(org, team_id)
        return await page(request, DETAIL, block=block, message=message, errors={}, form={}, **data)
    return redirect(request, f"{_base(org)}/{team_id}", message)


@get("/teams", opt={"permission": Perm.VIEW})
async def team_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    q, page_no = list_params(request)
    return await page(request, LIST, block=fragment(request, "results"), **await service.list_teams(org, q, page_no))


@get("/teams/new", opt={"permission": Perm.MANAGE_RESOURCES})
async def team_new(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _form_page(request, form={}, errors={})


@post("/teams", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def team_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        team_id = await service.create_team(org, form)
    except Invalid as exc:
        return await _form_page(request, form=form, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{team_id}", "Team created. Now add its members.")


@get("/teams/{team_id:str}", opt={"permission": Perm.VIEW})
async def team_detail(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    return await page(request, DETAIL, errors={}, form={}, **await service.team_detail(org, parse_id(team_id)))


@get("/teams/{team_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES})
async def team_edit(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    team = await service.get_team(org, parse_id(team_id))
    return await _form_page(request, form=dict(team), errors={}, team=team)


@post("/teams/{team_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def team_update(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    key = parse_id(team_id)
    form = await read_form(request)
    try:
        changed = await service.update_team(org, key, form)
    except Invalid as exc:
        team = await service.get_team(org, key)
        return await _form_page(request, form=form, errors=exc.field_errors, team=team, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{key}", "Team saved." if changed else "No changes to save.")


@post("/teams/{team_id:str}/members", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def team_member_add(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    key = parse_id(team_id)
    form = await read_form(request)
    try:
        name = await service.add_member(org, key, form)
    except Invalid as exc:
        data = await service.team_detail(org, key)
        return await page(
            request, DETAIL, status=HTTP_422_UNPROCESSABLE_ENTITY, block=fragment(request, "members"),
            errors=exc.field_errors, form=form, **data,
        )
    return await _members_changed(request, org, key, f"{name} added to the team.")


@post("/teams/{team_id:str}/members/{membership_id:str}/remove", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def team_member_remove(
    request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str], membership_id: FromPath[str]
) -> Response:
    key = parse_id(team_id)
    name = await service.remove_member(org, key, parse_id(membership_id))
    return await _members_changed(request, org, key, f"{name} removed from the team.")


@get("/teams/{team_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES})
async def team_delete_confirm(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    team = await service.get_team(org, parse_id(team_id))
    count = team["members"]
    return await page(
        request,
        "resources/confirm_delete.html",
        noun="team",
        name=team["name"],
        action=f"{_base(org)}/{team['id']}/delete",
        cancel=f"{_base(org)}/{team['id']}",
        blocker=None,
        consequence=(
            f"Its {count} member{'s stay' if count != 1 else ' stays'} in the organization; only the team goes."
            if count
            else "The team is empty; nobody is affected."
        ),
    )


@post("/teams/{team_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def team_delete(request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    form = await read_form(request)
    name = await service.delete_team(org, parse_id(team_id))
    message = f"Team “{name}” deleted."
    if is_htmx(request) and form.get("from") == "list":
        return removed(message)
    return redirect(request, _base(org), message)


ORG_ROUTES = [
    team_list,
    team_new,
    team_create,
    team_detail,
    team_edit,
    team_update,
    team_member_add,
    team_member_remove,
    team_delete_confirm,
    team_delete,
]
