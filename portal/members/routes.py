"""Members page, role change, removal, leaving, ownership transfer (thin: rules live in service)."""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import DomainError, Invalid, NotFound
from portal.members import service
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import ROLE_LABELS, Perm, Role
from portal.web.forms import field, read_form
from portal.web.render import is_htmx, page, redirect, safe_next

LIST = "members/list.html"


def _members_url(org: OrgContext) -> str:
    return f"/orgs/{org.org.slug}/members"


def _back(org: OrgContext, form: dict[str, str]) -> str:
    """Where a no-JavaScript form returns: the members page it was sent from (same search and
    page), never anywhere else."""
    base = _members_url(org)
    target = safe_next(form.get("next"), base)
    path = urlsplit(target).path
    return target if path == base else base


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    return value if isinstance(value, str) else ""


def _list_fragment(request: Request) -> bool:
    """An htmx search or page turn asks for the list only; a history restore wants the page."""
    return (
        is_htmx(request)
        and request.headers.get("hx-target") == "member-list"
        and request.headers.get("hx-history-restore-request") != "true"
    )


@get("/members", opt={"permission": Perm.VIEW})
async def member_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    data = await service.list_members(org, q=_query(request, "q"), after=_query(request, "after"), before=_query(request, "before"))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return await page(request, LIST, block="member_list" if _list_fragment(request) else None, here=here, **data)


async def _htmx_refusal(request: Request, org: OrgContext, raw_id: str, exc: DomainError) -> Response:
    """For htmx, a refused row action redraws the row as it really is (or drops it when the
    member is gone) and shows the reason in the flash area."""
    if isinstance(exc, service.ConcurrentChange):
        raise exc  # the transaction is aborted: no more reading; the generic error message it is
    member = None
    if not isinstance(exc, NotFound):
        try:
            member = await service.get_member(org, service.parse_member_id(raw_id))
        except NotFound:
            member = None
    if member is None:
        return await page(
            request, LIST, block="member_gone", status=404, message=service.MEMBER_GONE, category="error"
        )
    return await page(
        request, LIST, block="member_row", status=exc.status_code, message=exc.message, category="error",
        m=member, can_manage=org.can(Perm.MANAGE_MEMBERS),
    )


@post("/members/{member_id:str}/role", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def member_role(request: Request, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    form = await read_form(request)
    try:
        member, changed = await service.change_role(org, member_id, field(form, "role"))
    except DomainError as exc:
        if is_htmx(request):
            return await _htmx_refusal(request, org, member_id, exc)
        raise
    label = ROLE_LABELS[Role(member["role"])]
    message = f"{member['name']} is now {label}." if changed else f"{member['name']} already is {label}."
    category = "success" if changed else "info"
    if is_htmx(request):
        return await page(
            request, LIST, block="member_row", message=message, category=category, m=member, can_manage=True
        )
    return redirect(request, _back(org, form), message, category)


@get("/members/{member_id:str}/remove", opt={"permission": Perm.MANAGE_MEMBERS})
async def member_remove_confirm(request: Request, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    member = await service.removal_preview(org, member_id)
    return await page(request, "members/remove.html", m=member, next=_back(org, {"next": _query(request, "next")}))


@post("/members/{member_id:str}/remove", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def member_remove(request: Request, org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response:
    form = await read_form(request)
    try:
        member = await service.remove_member(org, member_id)
    except DomainError as exc:
        if is_htmx(request):
            return await _htmx_refusal(request, org, member_id, exc)
        raise
    message = f"{member['name']} was removed from {org.org.name}."
    if is_htmx(request):
        return await page(request, LIST, block="member_gone", message=message)
    return redirect(request, _back(org, form), message)


@get("/leave", opt={"permission": Perm.VIEW})
async def leave_confirm(request: Request, org: NamedDependency[OrgContext]) -> Response:
    # Everyone may read this page; only roles with "leave" may act on it. The owner is told why
    # they can't (409), instead of a bare "not allowed".
    if not org.can(Perm.LEAVE):
        return await page(request, "members/leave.html", status=HTTP_409_CONFLICT, owner_blocked=True, reason=service.OWNER_MUST_TRANSFER)
    return await page(request, "members/leave.html", owner_blocked=False)


@post("/leave", opt={"permission": Perm.LEAVE}, status_code=303)
async def leave(request: Request, org: NamedDependency[OrgContext]) -> Response:
    await service.leave(org)
    return redirect(request, "/orgs", f"You left {org.org.name}.")


async def _transfer_page(request: Request, org: OrgContext, *, q: str, selected: str | None, status: int = 200, errors=None) -> Response:
    data = await service.transfer_candidates(org, q, selected)
    return await page(request, "members/transfer.html", status=status, errors=errors or {}, **data)


@get("/transfer", opt={"permission": Perm.MANAGE_ORG})
async def transfer_form(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await _transfer_page(request, org, q=_query(request, "q"), selected=_query(request, "member_id") or None)


@post("/transfer", opt={"permission": Perm.MANAGE_ORG, "reauthenticate": True}, status_code=303)
async def transfer(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        member = await service.transfer_ownership(org, field(form, "member_id"), form.get("password", ""))
    except Invalid as exc:
        return await _transfer_page(
            request, org, q=field(form, "q"), selected=field(form, "member_id") or None,
            status=HTTP_422_UNPROCESSABLE_ENTITY, errors=exc.field_errors or {"member_id": exc.message},
        )
    return redirect(
        request, f"/orgs/{org.org.slug}", f"{member['name']} is now the owner of {org.org.name}. You are now a member."
    )


ORG_ROUTES = [member_list, member_role, member_remove_confirm, member_remove, leave_confirm, leave, transfer_form, transfer]
