"""Password reset pages: ask for a link, then choose a new password from it. All public."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.accounts import reset, sessions
from portal.accounts.link_pages import link_page, on_link
from portal.errors import Invalid
from portal.tenancy.context import client_ip
from portal.web.forms import field, read_form
from portal.web.render import page, redirect
from portal.web.urls import url_for

FORGOT = "accounts/forgot_password.html"
RESET = "accounts/reset_password.html"


@get("/forgot-password", name="account.forgot_form")
async def forgot_form(request: Request, sent: FromQuery[str | None] = None, email: FromQuery[str | None] = None) -> Response:
    return await page(request, FORGOT, sent=sent == "1", form={"email": (email or "")[:320]}, errors={})


@post("/forgot-password", name="account.forgot", status_code=303)
async def forgot(request: Request) -> Response:
    form = await read_form(request)
    try:
        await reset.request_reset(field(form, "email"), client_ip(request.scope))
    except Invalid as exc:
        return await page(request, FORGOT, status=HTTP_422_UNPROCESSABLE_ENTITY, sent=False, form=form, errors=exc.field_errors)
    # The same redirect whether or not the address has an account.
    return redirect(request, url_for(request, "account.forgot_form") + "?sent=1")


@get("/reset-password/{token:str}", name="account.reset_form")
async def reset_form(request: Request, token: FromPath[str]) -> Response:
    async def answer() -> Response:
        return await link_page(request, RESET, token=token, account=await reset.check(token), errors={})

    return await on_link(request, RESET, reset.check_link_client, answer)


@post("/reset-password/{token:str}", name="account.reset", status_code=303)
async def reset_submit(request: Request, token: FromPath[str]) -> Response:
    async def answer() -> Response:
        form = await read_form(request)
        try:
            await reset.reset_password(token, form.get("password", ""), form.get("confirm", ""))
        except Invalid as exc:
            account = await reset.check(token)
            return await link_page(request, RESET, status=HTTP_422_UNPROCESSABLE_ENTITY, token=token, account=account, errors=exc.field_errors)
        message = "Your password has been changed and every session signed out. Sign in with your new password."
        response = redirect(request, url_for(request, "account.login_form"), message)
        response.set_cookie(sessions.clear_cookie())  # this browser's session was revoked with the rest
        return response

    return await on_link(request, RESET, reset.check_link_client, answer)


ROUTES = [forgot_form, forgot, reset_form, reset_submit]
