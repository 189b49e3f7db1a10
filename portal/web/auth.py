"""Deny by default: every route needs a signed-in user unless it is in ``PUBLIC_ROUTES``.

This middleware wraps every route of the app. It loads the session named by the cookie (if any)
into ``scope["user"]``; on a route that is not public and without a live session it answers with
a redirect to the sign-in page, and the handler never runs.
"""

from __future__ import annotations

from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from portal.accounts import sessions
from portal.tenancy.public import PUBLIC_ROUTES


class NotSignedIn(Exception):
    def __init__(self, next_url: str):
        self.next_url = next_url


def is_public(scope: Scope) -> bool:
    return scope.get("path_template") in PUBLIC_ROUTES


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        connection = ASGIConnection(scope)
        scope["user"] = await sessions.load(connection.cookies.get(sessions.COOKIE))
        if scope["user"] is None and not is_public(scope):
            target = scope["path"]
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            if scope["method"] != "GET":
                target = "/orgs"
            raise NotSignedIn(quote(target, safe="/?=&"))
        await self.app(scope, receive, send)
