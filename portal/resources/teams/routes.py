"""A team's own pages beyond the shared ones: adding and removing members (htmx swaps the member
list in place; without JavaScript, plain forms and a redirect)."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, post
from litestar.plugins.htmx import HTMXRequest
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.params import parse_id
from portal.resources.teams.service import TEAMS, add_member, remove_member
from portal.resources.web import detail_page, fragment
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import redirect
from portal.web.urls import url_for

MANAGE = {"permission": Perm.MANAGE_RESOURCES}


async def _members_changed(request: HTMXRequest, org: OrgContext, team_id: UUID, message: str) -> Response:
    if fragment(request, "part"):
        return await detail_page(request, org, TEAMS, await TEAMS.get(org.scope, team_id), part="member_list", message=message)
    return redirect(request, url_for(request, "teams.detail", team_id=team_id), message)


@post("/teams/{team_id:str}/members", name="teams.add_member", opt=MANAGE, status_code=303)
async def team_member_add(request: HTMXRequest, org: NamedDependency[OrgContext], team_id: FromPath[str]) -> Response:
    key = parse_id(team_id)
    form = await read_form(request)
    try:
        name = await add_member(org, key, form)
    except Invalid as exc:
        team = await TEAMS.get(org.scope, key)
        return await detail_page(
            request, org, TEAMS, team, part="member_list" if fragment(request, "part") else None, status=HTTP_422_UNPROCESSABLE_ENTITY,
            errors=exc.field_errors, form=form,
        )
    return await _members_changed(request, org, key, f"{name} added to the team.")


@post("/teams/{team_id:str}/members/{membership_id:str}/remove", name="teams.remove_member", opt=MANAGE, status_code=303)
async def team_member_remove(
    request: HTMXRequest, org: NamedDependency[OrgContext], team_id: FromPath[str], membership_id: FromPath[str]
) -> Response:
    key = parse_id(team_id)
    name = await remove_member(org, key, parse_id(membership_id))
    return await _members_changed(request, org, key, f"{name} removed from the team.")


ROUTES = [team_member_add, team_member_remove]
