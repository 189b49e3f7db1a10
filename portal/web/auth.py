"""Deny by default: every route needs a signed-in user unless ``tenancy.public`` lists it.

This middleware wraps every route of the app. It loads the session named by the cookie (if any)
into ``scope["user"]``; on a route that is not public and without a live session it answers with
a redirect to the sign-in page, and the handler never runs.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from litestar.connection import ASGIConnection
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState

from portal.accounts import sessions
from portal.config import get_settings
from portal.tenancy import public


class NotSignedIn(Exception):
    def __init__(self, query: str):
        self.query = query  # "next=<where the visitor was going>", URL-encoded


def is_public(scope: Scope) -> bool:
    return public.is_public(scope.get("path_template"), scope["method"])


CSRF_COOKIE = "portal_csrf"


def _csrf_cookie_valid(value: str | None) -> bool:
    if value is None:
        return True  # nothing to replace
    secret, digest = value[:CSRF_SECRET_LENGTH], value[CSRF_SECRET_LENGTH:]
    return len(value) > CSRF_SECRET_LENGTH and hmac.compare_digest(
        digest, generate_csrf_hash(token=secret, secret=get_settings().secret_key)
    )


def _drop_cookie(scope: Scope, name: str) -> None:
    headers = []
    for key, value in scope["headers"]:
        if key == b"cookie":
            kept = [c for c in value.decode("latin-1").split(";") if c.strip().split("=", 1)[0] != name]
            value = ";".join(kept).encode("latin-1")
        headers.append((key, value))
    scope["headers"] = headers
    state = ScopeState.from_scope(scope)  # parsed headers and cookies are cached per request
    state.headers = state.cookies = Empty


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        connection = ASGIConnection(scope)
        if scope["method"] in ("GET", "HEAD") and not _csrf_cookie_valid(connection.cookies.get(CSRF_COOKIE)):
            _drop_cookie(scope, CSRF_COOKIE)  # so a fresh CSRF cookie is issued (e.g. after a key rotation)
        scope["user"] = await sessions.load(connection.cookies.get(sessions.COOKIE))
        if scope["user"] is None and not is_public(scope):
            target = scope["path"]
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            if scope["method"] != "GET":
                target = "/orgs"
            raise NotSignedIn(urlencode({"next": target}, safe="/"))
        await self.app(scope, receive, send)
