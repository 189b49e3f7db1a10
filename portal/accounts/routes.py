"""Sign up, sign in, sign out, account page, confirming the email address."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_403_FORBIDDEN, HTTP_409_CONFLICT, HTTP_422_UNPROCESSABLE_ENTITY

from portal.accounts import erasure, service, sessions, verify
from portal.accounts.link_pages import link_page, on_link
from portal.errors import Invalid
from portal.tenancy.context import client_ip
from portal.web.auth import signed_in_csrf_cookie, signed_out_csrf_cookie
from portal.web.forms import field, read_form
from portal.web.render import page, redirect, safe_next
from portal.web.urls import url_for

SIGNUP = "accounts/signup.html"
LOGIN = "accounts/login.html"
VERIFY = "accounts/verify_email.html"


@get("/signup", name="account.signup_form")
async def signup_form(
    request: Request,
    next: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    sent: FromQuery[str | None] = None,
) -> Response:
    email = (email or "")[:320]
    if sent == "1" and service.validate_email(email):
        email = ""  # "we've sent an email to …" names only something that is an address
    return await page(request, SIGNUP, sent=sent == "1", next=safe_next(next), form={"email": email}, email_fixed=bool(email), errors={})


@post("/signup", name="account.signup", status_code=303)
async def signup(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    try:
        email = await service.signup(
            field(form, "email"), field(form, "name"), form.get("password", ""), ip=client_ip(request.scope), next_url=next_url
        )
    except Invalid as exc:
        return await page(
            request,
            SIGNUP,
            status=HTTP_422_UNPROCESSABLE_ENTITY,
            sent=False,
            next=next_url,
            form=form,
            errors=exc.field_errors,
            email_fixed=form.get("email_fixed") == "1",
        )
    # The same redirect, and no session, whether or not the address already had an account.
    query = {"sent": "1", "email": email} | ({"next": next_url} if next_url != url_for(request, "orgs.list") else {})
    return redirect(request, url_for(request, "account.signup_form") + "?" + urlencode(query, safe="/"))


@get("/login", name="account.login_form")
async def login_form(request: Request, next: FromQuery[str | None] = None, email: FromQuery[str | None] = None) -> Response:
    return await page(request, LOGIN, next=safe_next(next), form={"email": email or ""}, error=None)


@post("/login", name="account.login", status_code=303)
async def login(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    ip = client_ip(request.scope)
    try:
        user_id = await service.authenticate(field(form, "email"), form.get("password", ""), ip)
    except Invalid as exc:
        return await page(request, LOGIN, status=HTTP_422_UNPROCESSABLE_ENTITY, next=next_url, form=form, error=exc.message)
    token = await sessions.create(
        user_id, ip=ip, user_agent=request.headers.get("user-agent", ""), replacing=request.cookies.get(sessions.COOKIE)
    )
    response = redirect(request, next_url)
    response.set_cookie(sessions.cookie(token))
    response.set_cookie(signed_in_csrf_cookie(request, token))  # a token from before sign-in is dead now
    return response


def _signed_out(response: Response, request: Request) -> Response:
    """``response`` ending this browser's session: no session cookie, a fresh anonymous CSRF token."""
    response.set_cookie(sessions.clear_cookie())
    response.set_cookie(signed_out_csrf_cookie(request))
    return response


@post("/logout", name="account.logout", status_code=303)
async def logout(request: Request) -> Response:
    await sessions.revoke(request.scope["user"].session_id)
    # `next`: the invite landing's "sign out and continue" comes back to the invite.
    form = await read_form(request)
    next_url = safe_next(form.get("next"), url_for(request, "account.login_form"))
    return _signed_out(redirect(request, next_url, "You have signed out."), request)


ACCOUNT = "accounts/account.html"


async def _account_page(request: Request, *, status: int = 200, **context) -> Response:
    user_id = request.scope["user"].id
    context.setdefault("owned_orgs", await erasure.owned_orgs(user_id))
    return await page(request, ACCOUNT, status=status, email_verified_at=await verify.verified_at(user_id), **context)


@get("/account", name="account.page")
async def account(request: Request) -> Response:
    return await _account_page(request)


@get("/account/data", name="account.data")
async def account_data(request: Request) -> Response:
    """The signed-in person's own data as one JSON file (SPEC §14)."""
    data = await erasure.personal_data(request.scope["user"].id)
    filename = f"praesidia-personal-data-{data['generated_at'][:10]}.json"
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@post("/account/delete", name="account.delete", status_code=303)
async def account_delete(request: Request) -> Response:
    """Delete the signed-in person's account, with their password (SPEC §14)."""
    form = await read_form(request)
    user = request.scope["user"]
    try:
        await erasure.delete_account(user.id, user.email, form.get("password", ""), client_ip(request.scope))
    except erasure.OwnsOrgs as exc:
        return await _account_page(request, status=HTTP_409_CONFLICT, owned_orgs=exc.orgs, form_error=exc.message)
    except Invalid as exc:
        return await _account_page(request, status=HTTP_422_UNPROCESSABLE_ENTITY, errors=exc.field_errors, form_error=exc.message)
    message = "Your account was deleted. Thank you for using Praesidia."
    return _signed_out(redirect(request, url_for(request, "account.login_form"), message), request)


@post("/account/sign-out-everywhere", name="account.sign_out_everywhere", status_code=303)
async def sign_out_everywhere(request: Request) -> Response:
    count = await sessions.revoke_all(request.scope["user"].id)
    message = f"Signed out of {count} session{'s' if count != 1 else ''} everywhere."
    return _signed_out(redirect(request, url_for(request, "account.login_form"), message), request)


# -- confirming the email address -----------------------------------------------------------------

async def _verify_page(request: Request, token: str, link: verify.Link, status: int = 200) -> Response:
    here = url_for(request, "account.verify_email_form", token=token)
    return await link_page(request, VERIFY, status=status, link=link, token=token, here=here)


@get("/verify-email/{token:str}", name="account.verify_email_form")
async def verify_email_page(request: Request, token: FromPath[str]) -> Response:
    """Public. Shows what the link confirms and a Confirm button; never changes anything (mail
    scanners open links). Confirming needs the account signed in, so the page offers that first."""

    async def answer() -> Response:
        return await _verify_page(request, token, await verify.check(token))

    return await on_link(request, VERIFY, verify.check_link_client, answer)


@post("/verify-email/{token:str}", name="account.verify_email", status_code=303)
async def verify_email_confirm(request: Request, token: FromPath[str]) -> Response:
    async def answer() -> Response:
        try:
            link = await verify.confirm(token, user_id=request.scope["user"].id)
        except verify.NotYours as exc:
            return await _verify_page(request, token, exc.link, status=HTTP_403_FORBIDDEN)
        return redirect(request, safe_next(link.next_url), f"Thanks! {link.email} is confirmed as your email address.")

    return await on_link(request, VERIFY, verify.check_link_client, answer)


@post("/account/verify-email/resend", name="account.verify_email_resend", status_code=303)
async def verify_email_resend(request: Request) -> Response:
    """A new confirmation link for the signed-in account (its page and the invite landing offer it)."""
    form = await read_form(request)
    next_url = safe_next(form.get("next"), url_for(request, "account.page"))
    email = await verify.resend(request.scope["user"].id, next_url)
    if email is None:
        return redirect(request, next_url, "Your email address is already confirmed.")
    return redirect(request, next_url, f"We've sent a new confirmation link to {email}. It expires in {verify.VALID_FOR}.")


ROUTES = [
    signup_form, signup, login_form, login, logout, account, account_data, account_delete, sign_out_everywhere,
    verify_email_page, verify_email_confirm, verify_email_resend,
]
