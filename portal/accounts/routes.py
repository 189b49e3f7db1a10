"""Sign up, sign in, sign out, account page."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.params import FromQuery
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.accounts import service, sessions
from portal.errors import Invalid
from portal.web.forms import field, read_form
from portal.web.render import page, redirect, safe_next


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


@get("/signup")
async def signup_form(request: Request, next: FromQuery[str | None] = None, email: FromQuery[str | None] = None) -> Response:
    return await page(request, "accounts/signup.html", next=safe_next(next), form={"email": email or ""}, email_fixed=bool(email), errors={})


@post("/signup", status_code=303)
async def signup(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    try:
        user_id = await service.signup(field(form, "email"), field(form, "name"), form.get("password", ""), ip=_ip(request))
    except Invalid as exc:
        return await page(
            request,
            "accounts/signup.html",
            status=HTTP_422_UNPROCESSABLE_ENTITY,
            next=next_url,
            form=form,
            errors=exc.field_errors,
            email_fixed=form.get("email_fixed") == "1",
        )
    token = await sessions.create(
        user_id, ip=_ip(request), user_agent=request.headers.get("user-agent", ""), replacing=request.cookies.get(sessions.COOKIE)
    )
    response = redirect(request, next_url, "Welcome to Praesidia! Your account is ready.")
    response.set_cookie(sessions.cookie(token))
    return response


@get("/login")
async def login_form(request: Request, next: FromQuery[str | None] = None, email: FromQuery[str | None] = None) -> Response:
    return await page(request, "accounts/login.html", next=safe_next(next), form={"email": email or ""}, error=None)


@post("/login", status_code=303)
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    try:
        user_id = await service.authenticate(field(form, "email"), form.get("password", ""), _ip(request))
    except Invalid as exc:
        return await page(
            request, "accounts/login.html", status=HTTP_422_UNPROCESSABLE_ENTITY, next=next_url, form=form, error=exc.message
        )
    token = await sessions.create(
        user_id, ip=_ip(request), user_agent=request.headers.get("user-agent", ""), replacing=request.cookies.get(sessions.COOKIE)
    )
    response = redirect(request, next_url)
    response.set_cookie(sessions.cookie(token))
    return response


@post("/logout", status_code=303)
async def logout(request: Request) -> Response:
    await sessions.revoke(request.scope["user"].session_id)
    # `next`: the invite landing's "sign out and continue" comes back to the invite.
    form = await read_form(request)
    response = redirect(request, safe_next(form.get("next"), "/login"), "You have signed out.")
    response.set_cookie(sessions.clear_cookie())
    return response


@get("/account")
async def account(request: Request) -> Response:
    return await page(request, "accounts/account.html")


@post("/account/sign-out-everywhere", status_code=303)
async def sign_out_everywhere(request: Request) -> Response:
    count = await sessions.revoke_all(request.scope["user"].id)
    response = redirect(request, "/login", f"Signed out of {count} session{'s' if count != 1 else ''} everywhere.")
    response.set_cookie(sessions.clear_cookie())
    return response


ROUTES = [signup_form, signup, login_form, login, logout, account, sign_out_everywhere]
