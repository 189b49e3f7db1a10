"""Members page, role change, removal, leaving, ownership transfer (thin: rules live in service)."""

from __future__ import annotations

from urllib.parse import urlsplit
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import DomainError, Invalid, NotFound
from portal.members import service
from portal.params import parse_id
from portal.tenancy.context import OrgContext
from portal.roles import service as roles
from portal.tenancy.permissions import Perm, Role
from portal.web.forms import field, read_form
from portal.web.render import page, redirect, safe_next
from portal.web.urls import url_for

LIST = "members/list.html"


def _back(request: Request, form: dict[str, str]) -> str:
    """Where a no-JavaScript form returns: the members page it was sent from (same search and
    page), never anywhere else."""
    base = url_for(request, "members.list")
    target = safe_next(form.get("next"), base)
    return target if urlsplit(target).path == base else base


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    return value if isinstance(value, str) else ""


def _id_or_none(raw: str) -> UUID | None:
    """An id that may be missing or malformed (the transfer page's preselection, a refused row):
    then there is simply no such member."""
    try:
        return parse_id(raw) if raw else None
    except NotFound:
        return None


def _list_fragment(request: HTMXRequest) -> bool:
    """An htmx search or page turn asks for the list only; a history restore wants the page."""
    htmx = request.htmx
    return bool(htmx) and htmx.target == "member-list" and not htmx.history_restore_request


@get("/members", name="members.list", opt={"permission": Perm.VIEW})
async def member_list(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
    data = await service.list_members(org, q=_query(request, "q"), after=_query(request, "after"), before=_query(request, "before"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await page(request, LIST, block="member_list" if _list_fragment(request) else None, here=here, **data)


async def _refused(request: HTMXRequest, org: OrgContext, raw_id: str, exc: DomainError) -> Response:
    """A refused row action: the error page, but for htmx the row redrawn as it really is (or
    dropped when the member is gone) with the reason in the flash area."""
    if not request.htmx or isinstance(exc, service.ConcurrentChange):
        raise exc  # ConcurrentChange: the transaction is aborted, no more reading; the generic message it is
    member_id = None if isinstance(exc, NotFound) else _id_or_none(raw_id)
    member = await service.get_member(org, member_id) if member_id else None
    if member is None:
        return await page(
            request, LIST, block="member_gone", status=404, message=service.MEMBER_GONE, category="error"
        )
    return await page(
        request, LIST, block="member_row", status=exc.status_code, message=exc.message, category="error",
        can_manage=org.can(Perm.MANAGE_MEMBERS), **await service.row_context(org, member),
    )


@post("/members/{member_id:str}/role", name="members.role", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def member_role(request: HTMXRequest, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    form = await read_form(request)
    try:
        member, changed = await service.change_role(org, parse_id(member_id), field(form, "role"))
    except DomainError as exc:
        return await _refused(request, org, member_id, exc)
    label = roles.of_row(member).label
    message = f"{member['name']} is now {label}." if changed else f"{member['name']} already is {label}."
    category = "success" if changed else "info"
    if request.htmx:
        return await page(
            request, LIST, block="member_row", message=message, category=category, can_manage=True,
            **await service.row_context(org, member),
        )
    return redirect(request, _back(request, form), message, category)


@get("/members/{member_id:str}/remove", name="members.remove_confirm", opt={"permission": Perm.MANAGE_MEMBERS})
async def member_remove_confirm(request: Request, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    member = await service.removal_preview(org, parse_id(member_id))
    return await page(request, "members/remove.html", m=member, next=_back(request, {"next": _query(request, "next")}))


@post("/members/{member_id:str}/remove", name="members.remove", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def member_remove(request: HTMXRequest, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    form = await read_form(request)
    try:
        member = await service.remove_member(org, parse_id(member_id))
    except DomainError as exc:
        return await _refused(request, org, member_id, exc)
    message = f"{member['name']} was removed from {org.org.name}."
    if request.htmx:
        return await page(request, LIST, block="member_gone", message=message)
    return redirect(request, _back(request, form), message)


@get("/leave", name="members.leave_confirm", opt={"permission": Perm.VIEW})
async def leave_confirm(request: Request, org: NamedDependency[OrgContext]) -> Response:
    # Everyone may read this page; only roles with "leave" may act on it. The owner is told why
    # they can't (409), and so is the holder of a custom role without "leave".
    if not org.can(Perm.LEAVE):
        reason = service.OWNER_MUST_TRANSFER if org.role == Role.OWNER else service.ROLE_CANNOT_LEAVE
        return await page(request, "members/leave.html", status=HTTP_409_CONFLICT, owner_blocked=True, reason=reason)
    return await page(request, "members/leave.html", owner_blocked=False)


@post("/leave", name="members.leave", opt={"permission": Perm.LEAVE}, status_code=303)
async def leave(request: Request, org: NamedDependency[OrgContext]) -> Response:
    await service.leave(org)
    return redirect(request, url_for(request, "orgs.list"), f"You left {org.org.name}.")


async def _transfer_page(request: Request, org: OrgContext, *, q: str, selected: str, status: int = 200, errors=None) -> Response:
    data = await service.transfer_candidates(org, q, _id_or_none(selected))
    return await page(request, "members/transfer.html", status=status, errors=errors or {}, **data)


@get("/transfer", name="members.transfer_form", opt={"permission": Perm.MANAGE_ORG})
async def transfer_form(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _transfer_page(request, org, q=_query(request, "q"), selected=_query(request, "member_id"))


@post("/transfer", name="members.transfer", opt={"permission": Perm.MANAGE_ORG, "reauthenticate": True}, status_code=303)
async def transfer(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    raw_id = field(form, "member_id")
    try:
        member_id = parse_id(raw_id, service.MEMBER_GONE) if raw_id else None
        member = await service.transfer_ownership(org, member_id, form.get("password", ""))
    except Invalid as exc:
        return await _transfer_page(
            request, org, q=field(form, "q"), selected=raw_id,
            status=HTTP_422_UNPROCESSABLE_ENTITY, errors=exc.field_errors or {"member_id": exc.message},
        )
    return redirect(
        request, url_for(request, "orgs.dashboard"), f"{member['name']} is now the owner of {org.org.name}. You are now a member."
    )


ORG_ROUTES = [member_list, member_role, member_remove_confirm, member_remove, leave_confirm, leave, transfer_form, transfer]
