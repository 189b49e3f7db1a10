"""Connection pages: list, create, detail, edit, replace the secret, delete.

The submitted secret is dropped from the form before any page is rendered, so a form that failed
validation never echoes it back.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid
from portal.resources.common import parse_id, pretty_json
from portal.resources.connections import service
from portal.resources.web import fragment, list_params, removed
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.forms import read_form
from portal.web.render import is_htmx, page, redirect

LIST = "resources/connections.html"
FORM = "resources/connection_form.html"
DETAIL = "resources/connection.html"


def _base(org: OrgContext) -> str:
    return f"/orgs/{org.org.slug}/connections"


def _without_secret(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != "secret"}


async def _form_page(
    request: Request, *, form: dict, errors: dict, connection=None, status: int = 200, block: str | None = None
) -> Response:
    kind = connection["kind"] if connection else form.get("kind")
    return await page(
        request, FORM, status=status, block=block, form=_without_secret(form), errors=errors, connection=connection,
        kinds=service.KINDS, examples={k: pretty_json(v.example) for k, v in service.KINDS.items()},
        chosen=kind if kind in service.KINDS else None,
    )


async def _detail_page(
    request: Request, connection, *, errors: dict | None = None, status: int = 200, message: str | None = None, block: str | None = None
) -> Response:
    return await page(
        request, DETAIL, status=status, block=block, message=message,
        connection=connection, kind=service.KINDS.get(connection["kind"]), errors=errors or {},
        config_json=pretty_json(service.shown_config(connection)), config_problem=service.stored_config_problem(connection),
    )


@get("/connections", opt={"permission": Perm.VIEW})
async def connection_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    q, page_no = list_params(request)
    data = await service.list_connections(org, q, page_no)
    return await page(request, LIST, block=fragment(request, "results"), kind_label=service.kind_label, **data)


@get("/connections/new", opt={"permission": Perm.MANAGE_RESOURCES})
async def connection_new(request: Request, org: NamedDependency[OrgContext]) -> Response:
    """``?kind=`` preselects a kind; the kind select asks for just its keys' block when it changes."""
    kind = request.query_params.get("kind")
    block = fragment(request, "config_keys") if request.headers.get("hx-target") == "config-keys" else None
    return await _form_page(request, form={"config": "{}", "kind": kind if kind in service.KINDS else ""}, errors={}, block=block)


@post("/connections", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def connection_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        connection_id = await service.create_connection(org, form)
    except Invalid as exc:
        return await _form_page(request, form=form, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY)
    return redirect(request, f"{_base(org)}/{connection_id}", "Connection created.")


@get("/connections/{connection_id:str}", opt={"permission": Perm.VIEW})
async def connection_detail(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    return await _detail_page(request, await service.get_connection(org, parse_id(connection_id)))


@get("/connections/{connection_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES})
async def connection_edit(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    connection = await service.get_connection(org, parse_id(connection_id))
    return await _form_page(request, form=service.form_of(connection), errors={}, connection=connection)


@post("/connections/{connection_id:str}/edit", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def connection_update(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    key = parse_id(connection_id)
    form = await read_form(request)
    try:
        changed = await service.update_connection(org, key, form)
    except Invalid as exc:
        connection = await service.get_connection(org, key)
        return await _form_page(
            request, form={**form, "kind": connection["kind"]}, errors=exc.field_errors, connection=connection,
            status=HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return redirect(request, f"{_base(org)}/{key}", "Connection saved." if changed else "No changes to save.")


@post("/connections/{connection_id:str}/secret", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def connection_secret(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    key = parse_id(connection_id)
    form = await read_form(request)
    clearing = form.get("action") == "clear"
    try:
        connection = await service.replace_secret(org, key, form)
    except Invalid as exc:
        connection = await service.get_connection(org, key)
        return await _detail_page(
            request, connection, errors=exc.field_errors, status=HTTP_422_UNPROCESSABLE_ENTITY, block=fragment(request, "secret")
        )
    message = "Secret removed." if clearing else "Secret replaced. The previous value is gone."
    if block := fragment(request, "secret"):
        return await _detail_page(request, connection, message=message, block=block)
    return redirect(request, f"{_base(org)}/{key}", message)


@get("/connections/{connection_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES})
async def connection_delete_confirm(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    connection = await service.get_connection(org, parse_id(connection_id))
    return await page(
        request,
        "resources/confirm_delete.html",
        noun="connection",
        name=connection["name"],
        action=f"{_base(org)}/{connection['id']}/delete",
        cancel=f"{_base(org)}/{connection['id']}",
        blocker=None,
        consequence="Its configuration and its stored secret are destroyed; agents can no longer use it.",
    )


@post("/connections/{connection_id:str}/delete", opt={"permission": Perm.MANAGE_RESOURCES}, status_code=303)
async def connection_delete(request: Request, org: NamedDependency[OrgContext], connection_id: FromPath[str]) -> Response:
    form = await read_form(request)
    name = await service.delete_connection(org, parse_id(connection_id))
    message = f"Connection “{name}” deleted."
    if is_htmx(request) and form.get("from") == "list":
        return removed(message)
    return redirect(request, _base(org), message)


ORG_ROUTES = [
    connection_list,
    connection_new,
    connection_create,
    connection_detail,
    connection_edit,
    connection_update,
    connection_secret,
    connection_delete_confirm,
    connection_delete,
]
