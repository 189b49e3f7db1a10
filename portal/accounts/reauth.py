"""Re-entering the password for a sensitive org action (transfer ownership, delete the org).

An org route that declares ``opt={"reauthenticate": True}`` gets the form's ``password`` checked
here, before the org context opens the action's transaction (SPEC §9); the org context hands the
result on as ``OrgContext.password_ok`` (True, False, or None when no password came).

argon2 is slow and its slots are few: a request that queued for one while holding a pooled
connection would let a handful of wrong-password requests pin the whole pool. So the whole body is
read first (within the org context's size and time limits), a short transaction checks that the
actor may use the route at all (a stranger costs no hash; 404/403 as usual) and releases its
connection, and only then the password is checked, through the sign-in throttle, which records the
attempt before it hashes.
"""

from __future__ import annotations

import hmac

from litestar import Request
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.accounts import service
from portal.db import engine as db
from portal.errors import Invalid
from portal.tenancy.context import SAFE_METHODS, client_ip, read_body, replay, required_permission, resolve
from portal.web.forms import read_form


class ReauthenticateMiddleware:
    """Runs just outside ``OrgContextMiddleware`` on org routes (``portal.app``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS and scope["route_handler"].opt.get("reauthenticate"):
            body = await read_body(receive)
            scope["state"]["password_ok"] = await _check_password(scope, replay(body, receive))
            receive = replay(body, receive)  # the org context and the handler read the same body again
        await self.app(scope, receive, send)


async def _check_password(scope: Scope, receive: Receive) -> bool | None:
    user = scope.get("user")
    if user is None:
        return None  # the session middleware has refused already; the org context says 404
    request: Request = Request(scope, receive)
    form = await read_form(request)  # parsed once; the handler reads the cached form
    password = form.get("password", "")
    if not password or not _csrf_token_matches(request, form):
        return None  # no password, or a forged form: Litestar's CSRF check answers 403 next
    ip = client_ip(scope)
    async with db.transaction():
        await resolve(scope["path_params"]["slug"], user, required_permission(scope["route_handler"]), lock=False, ip=ip)
    try:
        await service.reauthenticate(user.email, password, ip)
    except Invalid:
        return False
    return True


def _csrf_token_matches(request: Request, form: dict[str, str]) -> bool:
    """The CSRF check, early: this runs before Litestar's, and a password must not be hashed (nor
    a failed attempt counted) for a request that check will refuse. For a signed-in request the
    session middleware has already put the session's own token in the cookie."""
    config = request.app.csrf_config
    if config is None:
        return True
    sent = request.headers.get(config.header_name) or form.get("_csrf_token", "")
    expected = request.cookies.get(config.cookie_name, "")
    return bool(sent and expected) and hmac.compare_digest(sent.encode(), expected.encode())
