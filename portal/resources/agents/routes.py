"""Agent pages: list, create, detail, edit, pause/resume, delete."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.resources.agents import service
from portal.resources.common import parse_id
from portal.resources.web import back_to, fragment, list_params, removed
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import is_htmx, page, redirect

LIST = "resources/agents.html"
FORM = "resources/agent_form.html"


def _base(org: OrgContext) -> str:
    return f"/orgs/{org.org.slug}/agents"


async def _form_page(request: Request, *, form: dict, errors: dict, agent=None, status: int = 200) -> Response:
    return await page(request, FORM, status=status, form=form, errors=errors, agent=agent, models=service.SUGGESTED_MODELS)


@get("/agents", opt={"permission": Perm.VIEW})
async def agent_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    q, page_no = list_params(request)
    return await page(request, LIST, block=fragment(request, "results"), **await service.list_agents(org, q, page_no))


@get("/agents/new", opt={"permission": Perm.MANAGE_RESOURCES})
async def agent_new(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _form_page(request, form={"status": "active"}, errors={})


@post("/agents", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def agent_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        agent_id = await service.create_agent(org, form)
    except Invalid as exc:
        return await _form_page(request, form=form, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{agent_id}", "Agent created.")


@get("/agents/{agent_id:str}", opt={"permission": Perm.VIEW})
async def agent_detail(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    return await page(request, "resources/agent.html", **await service.agent_detail(org, parse_id(agent_id)))


@get("/agents/{agent_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES})
async def agent_edit(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    agent = await service.get_agent(org, parse_id(agent_id))
    return await _form_page(request, form=dict(agent), errors={}, agent=agent)


@post("/agents/{agent_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def agent_update(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    key = parse_id(agent_id)
    form = await read_form(request)
    try:
        changed = await service.update_agent(org, key, form)
    except Invalid as exc:
        agent = await service.get_agent(org, key)
        return await _form_page(request, form=form, errors=exc.field_errors, agent=agent, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{key}", "Agent saved." if changed else "No changes to save.")


@post("/agents/{agent_id:str}/status", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def agent_status(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    key = parse_id(agent_id)
    form = await read_form(request)
    agent = await service.set_status(org, key, form.get("status", ""))
    message = f"“{agent['name']}” is {'active' if agent['status'] == 'active' else 'paused'}."
    if block := fragment(request, "agent_row"):
        return await page(request, LIST, block=block, a=agent, message=message)
    return redirect(request, back_to(form, org, f"{_base(org)}/{key}"), message)


@get("/agents/{agent_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES})
async def agent_delete_confirm(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    agent = await service.get_agent(org, parse_id(agent_id))
    used = agent["workflows"]
    return await page(
        request,
        "resources/confirm_delete.html",
        noun="agent",
        name=agent["name"],
        action=f"{_base(org)}/{agent['id']}/delete",
        cancel=f"{_base(org)}/{agent['id']}",
        blocker=(
            f"This agent runs {used} workflow{'s' if used != 1 else ''}. Move them to another agent or delete them first."
            if used
            else None
        ),
        consequence="Its settings are removed. The audit log keeps a record of it.",
    )


@post("/agents/{agent_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def agent_delete(request: Request, org: NamedDependency[OrgContext], agent_id: FromPath[str]) -> Response:
    form = await read_form(request)
    name = await service.delete_agent(org, parse_id(agent_id))
    message = f"Agent “{name}” deleted."
    if is_htmx(request) and form.get("from") == "list":
        return removed(message)
    return redirect(request, _base(org), message)


ORG_ROUTES = [
    agent_list,
    agent_new,
    agent_create,
    agent_detail,
    agent_edit,
    agent_update,
    agent_status,
    agent_delete_confirm,
    agent_delete,
]
