"""Invite pages: the owner's list inside the org (``invites.list``), the invitee's landing and accept."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.status_codes import HTTP_403_FORBIDDEN, HTTP_404_NOT_FOUND, HTTP_422_UNPROCESSABLE_ENTITY

from portal.errors import Invalid, TooManyRequests
from portal.invites import service
from portal.invites.service import DeadInvite, Unverified, WrongAccount
from portal.params import parse_id
from portal.tenancy.context import OrgContext, client_ip
from portal.tenancy.permissions import Perm, Role
from portal.web.errors import error_response
from portal.web.forms import field, read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for

# The invite link carries a secret: no Referer leaves the page, and nothing keeps a copy of it.
PRIVATE_LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
LIST = "invites/list.html"


# -- the owner's side ----------------------------------------------------------------------------

@get("/invites", name="invites.list", opt={"permission": Perm.MANAGE_MEMBERS})
async def invite_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    # Rows still being emailed show "Sending…" and poll themselves: a page never waits for SMTP.
    return await page(request, LIST, **await service.list_invites(org), form={"role": Role.MEMBER.value}, errors={})


@post("/invites", name="invites.create", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def invite_create(request: Request, org: NamedDependency[OrgContext]) -> Response:
    form = await read_form(request)
    try:
        outgoing = await service.create_invite(org, field(form, "email"), field(form, "role"))
    except Invalid as exc:
        return await page(
            request,
            LIST,
            status=HTTP_422_UNPROCESSABLE_ENTITY,
            block="invite_form",
            **await service.list_invites(org),
            form=form,
            errors=exc.field_errors,
            form_error=None if exc.field_errors else exc.message,
        )
    return redirect(request, url_for(request, "invites.list"), f"Invite created for {outgoing.email}. The link is being emailed now.")


@get("/invites/{invite_id:str}", name="invites.row", opt={"permission": Perm.MANAGE_MEMBERS})
async def invite_row(request: HTMXRequest, org: NamedDependency[OrgContext], invite_id: FromPath[str]) -> Response:
    """One list row, polled by htmx while its email is being sent."""
    invite = await service.one_invite(org, parse_id(invite_id))  # another org's id: the same 404 as any unknown id
    if not request.htmx:
        return redirect(request, url_for(request, "invites.list"))
    return await page(request, LIST, block="row" if invite else "gone", invite=invite)


@post("/invites/{invite_id:str}/resend", name="invites.resend", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def invite_resend(request: HTMXRequest, org: NamedDependency[OrgContext], invite_id: FromPath[str]) -> Response:
    outgoing = await service.resend_invite(org, parse_id(invite_id))
    message = f"A new link is being emailed to {outgoing.email}. The previous link no longer works."
    if request.htmx:
        invite = await service.one_invite(org, outgoing.invite_id)
        return await page(request, LIST, block="row", invite=invite, message=message)
    return redirect(request, url_for(request, "invites.list"), message)


@post("/invites/{invite_id:str}/retry-mail", name="invites.retry_mail", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def invite_retry_mail(request: HTMXRequest, org: NamedDependency[OrgContext], invite_id: FromPath[str]) -> Response:
    """Queue an undelivered invite mail again (the same link)."""
    email = await service.retry_mail(org, parse_id(invite_id))
    message = f"The invite to {email} is being emailed again."
    if request.htmx:
        return await page(request, LIST, block="row", invite=await service.one_invite(org, parse_id(invite_id)), message=message)
    return redirect(request, url_for(request, "invites.list"), message)


@post("/invites/{invite_id:str}/revoke", name="invites.revoke", opt={"permission": Perm.MANAGE_MEMBERS}, status_code=303)
async def invite_revoke(request: HTMXRequest, org: NamedDependency[OrgContext], invite_id: FromPath[str]) -> Response:
    email = await service.revoke_invite(org, parse_id(invite_id))
    message = f"The invite for {email} was revoked. Its link no longer works."
    if request.htmx:
        return await page(request, LIST, block="gone", message=message)
    return redirect(request, url_for(request, "invites.list"), message)


# -- the invitee's side --------------------------------------------------------------------------

async def _dead(request: Request) -> Response:
    """The one page for every dead or unknown invite: same status, same words, whatever the cause."""
    return await page(
        request, "invites/dead.html", status=HTTP_404_NOT_FOUND, reason=DeadInvite().message, headers=PRIVATE_LINK_HEADERS
    )


def _too_many(request: Request, exc: TooManyRequests) -> Response:
    return error_response(request, exc.status_code, exc.message, {"Retry-After": str(exc.retry_after), **PRIVATE_LINK_HEADERS})


async def _landing_page(request: Request, token: str, invite: dict, status: int = 200) -> Response:
    return await page(
        request,
        "invites/landing.html",
        status=status,
        invite=invite,
        token=token,
        here=url_for(request, "invites.landing", token=token),
        headers=PRIVATE_LINK_HEADERS,
    )


@get("/invites/{token:str}", name="invites.landing")
async def invite_landing(request: Request, token: FromPath[str]) -> Response:
    """Public. Shows the invite and an Accept button; never changes anything (mail scanners open links)."""
    user = request.scope.get("user")
    try:
        await service.check_public_rate(client_ip(request.scope))
        invite = await service.landing(token, viewer_id=user.id if user else None)
    except TooManyRequests as exc:
        return _too_many(request, exc)
    except DeadInvite:
        return await _dead(request)
    return await _landing_page(request, token, invite)


@post("/invites/{token:str}/accept", name="invites.accept", status_code=303)
async def invite_accept(request: Request, token: FromPath[str]) -> Response:
    user = request.scope["user"]
    try:
        await service.check_public_rate(client_ip(request.scope))
        accepted = await service.accept(token, user_id=user.id, user_email=user.email, ip=client_ip(request.scope))
    except TooManyRequests as exc:
        return _too_many(request, exc)
    except DeadInvite:
        return await _dead(request)
    except WrongAccount as exc:
        return await _landing_page(request, token, exc.invite, status=HTTP_403_FORBIDDEN)
    except Unverified as exc:  # the landing page explains and offers a new confirmation link
        return await _landing_page(request, token, exc.invite | {"viewer_verified": False}, status=HTTP_403_FORBIDDEN)
    if accepted.already_member:
        message = f"You're already a member of {accepted.org_name}."
    else:
        message = f"Welcome to {accepted.org_name}! You joined as {accepted.role_label}."
    response = redirect(request, url_for(request, "orgs.dashboard", slug=accepted.org_slug), message)
    response.headers.update(PRIVATE_LINK_HEADERS)
    return response


ROUTES = [invite_landing, invite_accept]
ORG_ROUTES = [invite_list, invite_create, invite_row, invite_resend, invite_retry_mail, invite_revoke]
