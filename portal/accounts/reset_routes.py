"""Password reset pages: ask for a link, then choose a new password from it. All public."""

from __future__ import annotations

from datetime import timedelta

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_404_NOT_FOUND, HTTP_422_UNPROCESSABLE_ENTITY

from portal.accounts import reset, sessions
from portal.errors import Invalid, TooManyRequests
from portal.tenancy.context import client_ip
from portal.web.errors import error_response
from portal.web.forms import field, read_form
from portal.web.render import page, redirect

# The reset link is a secret: no Referer leaves its page and nothing keeps a copy.
PRIVATE_LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
FORGOT = "accounts/forgot_password.html"
RESET = "accounts/reset_password.html"


@get("/forgot-password")
async def forgot_form(request: Request, sent: FromQuery[str | None] = None, email: FromQuery[str | None] = None) -> Response:
    return await page(request, FORGOT, sent=sent == "1", form={"email": (email or "")[:320]}, errors={})


@post("/forgot-password", status_code=303)
async def forgot(request: Request) -> Response:
    form = await read_form(request)
    try:
        await reset.request_reset(field(form, "email"), client_ip(request.scope))
    except Invalid as exc:
        return await page(request, FORGOT, status=HTTP_422_UNPROCESSABLE_ENTITY, sent=False, form=form, errors=exc.field_errors)
    # The same redirect whether or not the address has an account.
    return redirect(request, "/forgot-password?sent=1")


async def _dead(request: Request) -> Response:
    return await page(request, RESET, status=HTTP_404_NOT_FOUND, dead=True, reason=reset.DeadLink().message, headers=PRIVATE_LINK_HEADERS)


async def _limit(request: Request) -> Response | None:
    try:
        await reset.check_client("reset-link", client_ip(request.scope), reset.LINK_HITS_PER_CLIENT, timedelta(minutes=10))
    except TooManyRequests as exc:
        return error_response(request, exc.status_code, exc.message, {"Retry-After": str(exc.retry_after), **PRIVATE_LINK_HEADERS})
    return None


@get("/reset-password/{token:str}")
async def reset_form(request: Request, token: FromPath[str]) -> Response:
    if refused := await _limit(request):
        return refused
    try:
        account = await reset.check(token)
    except reset.DeadLink:
        return await _dead(request)
    return await page(request, RESET, dead=False, token=token, account=account, errors={}, headers=PRIVATE_LINK_HEADERS)


@post("/reset-password/{token:str}", status_code=303)
async def reset_submit(request: Request, token: FromPath[str]) -> Response:
    if refused := await _limit(request):
        return refused
    form = await read_form(request)
    try:
        await reset.reset_password(token, form.get("password", ""), form.get("confirm", ""))
    except reset.DeadLink:
        return await _dead(request)
    except Invalid as exc:
        account = await reset.check(token)
        return await page(
            request, RESET, status=HTTP_422_UNPROCESSABLE_ENTITY, dead=False, token=token, account=account,
            errors=exc.field_errors, headers=PRIVATE_LINK_HEADERS,
        )
    response = redirect(request, "/login", "Your password has been changed and every session signed out. Sign in with your new password.")
    response.set_cookie(sessions.clear_cookie())  # this browser's session was revoked with the rest
    response.headers.update(PRIVATE_LINK_HEADERS)
    return response


ROUTES = [forgot_form, forgot, reset_form, reset_submit]
