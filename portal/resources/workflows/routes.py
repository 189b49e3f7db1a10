"""Workflow pages: list, create, detail, edit, enable/disable, delete."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.resources.agents.service import agent_choices
from portal.resources.common import parse_id, pretty_json
from portal.resources.web import back_to, fragment, list_params, removed
from portal.resources.workflows import definition, service
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import is_htmx, page, redirect

LIST = "resources/workflows.html"
FORM = "resources/workflow_form.html"


def _base(org: OrgContext) -> str:
    return f"/orgs/{org.org.slug}/workflows"


async def _form_page(request: Request, org: OrgContext, *, form: dict, errors: dict, workflow=None, status: int = 200) -> Response:
    return await page(
        request, FORM, status=status, form=form, errors=errors, workflow=workflow,
        agents=await agent_choices(org, current=workflow["agent_id"] if workflow else None), definition_help=definition,
    )


@get("/workflows", opt={"permission": Perm.VIEW})
async def workflow_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    q, page_no = list_params(request)
    return await page(request, LIST, block=fragment(request, "results"), **await service.list_workflows(org, q, page_no))


@get("/workflows/new", opt={"permission": Perm.MANAGE_RESOURCES})
async def workflow_new(request: Request, org: NamedDependency[OrgContext]) -> Response:
    preselect = request.query_params.get("agent", "")[:64]
    return await _form_page(request, org, form={"enabled": "1", "definition": definition.EXAMPLE, "agent_id": preselect}, errors={})


@post("/workflows", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def workflow_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        workflow_id = await service.create_workflow(org, form)
    except Invalid as exc:
        return await _form_page(request, org, form=form, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{workflow_id}", "Workflow created.")


@get("/workflows/{workflow_id:str}", opt={"permission": Perm.VIEW})
async def workflow_detail(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    workflow = await service.get_workflow(org, parse_id(workflow_id))
    return await page(request, "resources/workflow.html", workflow=workflow, definition_json=pretty_json(workflow["definition"]))


@get("/workflows/{workflow_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES})
async def workflow_edit(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    workflow = await service.get_workflow(org, parse_id(workflow_id))
    return await _form_page(request, org, form=service.form_of(workflow), errors={}, workflow=workflow)


@post("/workflows/{workflow_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def workflow_update(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    key = parse_id(workflow_id)
    form = await read_form(request)
    try:
        changed = await service.update_workflow(org, key, form)
    except Invalid as exc:
        workflow = await service.get_workflow(org, key)
        return await _form_page(request, org, form=form, errors=exc.field_errors, workflow=workflow, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{key}", "Workflow saved." if changed else "No changes to save.")


@post("/workflows/{workflow_id:str}/enabled", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def workflow_enabled(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    key = parse_id(workflow_id)
    form = await read_form(request)
    workflow = await service.set_enabled(org, key, form.get("enabled", ""))
    message = f"“{workflow['name']}” is {'enabled' if workflow['enabled'] else 'disabled'}."
    if block := fragment(request, "workflow_row"):
        return await page(request, LIST, block=block, w=workflow, message=message)
    return redirect(request, back_to(form, org, f"{_base(org)}/{key}"), message)


@get("/workflows/{workflow_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES})
async def workflow_delete_confirm(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    workflow = await service.get_workflow(org, parse_id(workflow_id))
    return await page(
        request,
        "resources/confirm_delete.html",
        noun="workflow",
        name=workflow["name"],
        action=f"{_base(org)}/{workflow['id']}/delete",
        cancel=f"{_base(org)}/{workflow['id']}",
        blocker=None,
        consequence="Its definition is removed and it stops running. The audit log keeps a record of it.",
    )


@post("/workflows/{workflow_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def workflow_delete(request: Request, org: NamedDependency[OrgContext], workflow_id: FromPath[str]) -> Response:
    form = await read_form(request)
    name = await service.delete_workflow(org, parse_id(workflow_id))
    message = f"Workflow “{name}” deleted."
    if is_htmx(request) and form.get("from") == "list":
        return removed(message)
    return redirect(request, _base(org), message)


ORG_ROUTES = [
    workflow_list,
    workflow_new,
    workflow_create,
    workflow_detail,
    workflow_edit,
    workflow_update,
    workflow_enabled,
    workflow_delete_confirm,
    workflow_delete,
]
