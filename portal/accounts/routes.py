"""Sign up, sign in, sign out, account page, confirming the email address."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_403_FORBIDDEN, HTTP_404_NOT_FOUND, HTTP_422_UNPROCESSABLE_ENTITY

from portal.accounts import service, sessions, verify
from portal.errors import Invalid, TooManyRequests
from portal.web.errors import error_response
from portal.web.auth import signed_in_csrf_cookie, signed_out_csrf_cookie
from portal.web.forms import field, read_form
from portal.web.render import page, redirect, safe_next


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


SIGNUP = "accounts/signup.html"
VERIFY = "accounts/verify_email.html"
# A confirmation link is a secret (and may carry an invite link in ``next``): no Referer leaves
# its page and nothing keeps a copy.
PRIVATE_LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@get("/signup")
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


@post("/signup", status_code=303)
async def signup(request: Request) -> Response:
    form = await read_form(request)
    next_url = safe_next(form.get("next"))
    try:
        email = await service.signup(field(form, "email"), field(form, "name"), form.get("password", ""), ip=_ip(request), next_url=next_url)
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
    query = {"sent": "1", "email": email} | ({"next": next_url} if next_url != "/orgs" else {})
    return redirect(request, "/signup?" + urlencode(query, safe="/"))


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
    response.set_cookie(signed_in_csrf_cookie(request, token))  # a token from before sign-in is dead now
    return response


@post("/logout", status_code=303)
async def logout(request: Request) -> Response:
    await sessions.revoke(request.scope["user"].session_id)
    # `next`: the invite landing's "sign out and continue" comes back to the invite.
    form = await read_form(request)
    response = redirect(request, safe_next(form.get("next"), "/login"), "You have signed out.")
    response.set_cookie(sessions.clear_cookie())
    response.set_cookie(signed_out_csrf_cookie(request))
    return response


@get("/account")
async def account(request: Request) -> Response:
    return await page(request, "accounts/account.html", email_verified_at=await verify.verified_at(request.scope["user"].id))


@post("/account/sign-out-everywhere", status_code=303)
async def sign_out_everywhere(request: Request) -> Response:
    count = await sessions.revoke_all(request.scope["user"].id)
    response = redirect(request, "/login", f"Signed out of {count} session{'s' if count != 1 else ''} everywhere.")
    response.set_cookie(sessions.clear_cookie())
    response.set_cookie(signed_out_csrf_cookie(request))
    return response


# -- confirming the email address -----------------------------------------------------------------

async def _verify_dead(request: Request) -> Response:
    return await page(
        request, VERIFY, status=HTTP_404_NOT_FOUND, dead=True, reason=verify.DeadLink().message, headers=PRIVATE_LINK_HEADERS
    )


async def _verify_page(request: Request, token: str, link: verify.Link, status: int = 200) -> Response:
    return await page(
        request, VERIFY, status=status, dead=False, link=link, token=token, here=f"/verify-email/{token}", headers=PRIVATE_LINK_HEADERS
    )


async def _verify_limit(request: Request) -> Response | None:
    try:
        await verify.check_client(_ip(request))
    except TooManyRequests as exc:
        return error_response(request, exc.status_code, exc.message, {"Retry-After": str(exc.retry_after), **PRIVATE_LINK_HEADERS})
    return None


@get("/verify-email/{token:str}")
async def verify_email_page(request: Request, token: FromPath[str]) -> Response:
    """Public. Shows what the link confirms and a Confirm button; never changes anything (mail
    scanners open links). Confirming needs the account signed in, so the page offers that first."""
    if refused := await _verify_limit(request):
        return refused
    try:
        link = await verify.check(token)
    except verify.DeadLink:
        return await _verify_dead(request)
    return await _verify_page(request, token, link)


@post("/verify-email/{token:str}", status_code=303)
async def verify_email_confirm(request: Request, token: FromPath[str]) -> Response:
    if refused := await _verify_limit(request):
        return refused
    try:
        link = await verify.confirm(token, user_id=request.scope["user"].id)
    except verify.DeadLink:
        return await _verify_dead(request)
    except verify.NotYours as exc:
        return await _verify_page(request, token, exc.link, status=HTTP_403_FORBIDDEN)
    response = redirect(request, safe_next(link.next_url), f"Thanks! {link.email} is confirmed as your email address.")
    response.headers.update(PRIVATE_LINK_HEADERS)
    return response


@post("/account/verify-email/resend", status_code=303)
async def verify_email_resend(request: Request) -> Response:
    """A new confirmation link for the signed-in account (its page and the invite landing offer it)."""
    form = await read_form(request)
    next_url = safe_next(form.get("next"), "/account")
    email = await verify.resend(request.scope["user"].id, next_url)
    if email is None:
        return redirect(request, next_url, "Your email address is already confirmed.")
    return redirect(request, next_url, f"We've sent a new confirmation link to {email}. It expires in {verify.VALID_FOR}.")


ROUTES = [
    signup_form, signup, login_form, login, logout, account, sign_out_everywhere,
    verify_email_page, verify_email_confirm, verify_email_resend,
]
