"""Deny by default: every route needs a signed-in user unless ``tenancy.public`` lists it.

This middleware wraps every route of the app. It loads the session named by the cookie (if any)
into ``scope["user"]``; on a route that is not public and without a live session it answers with
a redirect to the sign-in page, and the handler never runs.

It also binds the CSRF token to the session. Litestar's CSRF middleware (inside this one) checks
a double-submit pair: the token sent must match the CSRF cookie. Alone, that lets a token minted
before sign-in (or a cookie planted by someone who knows its token) live on into the session. So
for a signed-in request the cookie Litestar sees is replaced by the session's own token, derived
from the session cookie: only a token issued for this session passes, and the browser's cookie is
brought in line on the response.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from litestar import Request
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, generate_csrf_hash, generate_csrf_token
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.types.empty import Empty
from litestar.utils.scope.state import ScopeState

from portal.tenancy import public
from portal.tenancy.context import SAFE_METHODS
from portal.web import sessions
from portal.web.urls import reverse


class NotSignedIn(Exception):
    def __init__(self, query: str):
        self.query = query  # "next=<where the visitor was going>", URL-encoded


def is_public(scope: Scope) -> bool:
    return public.is_public(scope.get("path_template"), scope["method"])


CSRF_COOKIE = "portal_csrf"


def csrf_cookie_name(secure: bool) -> str:
    """Under https the ``__Host-`` prefix: the browser then only accepts the cookie from this very
    host over TLS, with ``Path=/`` and no ``Domain``, so a sibling subdomain cannot plant one."""
    return "__Host-" + CSRF_COOKIE if secure else CSRF_COOKIE


def session_csrf_token(session_token: str, secret: str) -> str:
    """The CSRF token of one session, in Litestar's format (64 hex digits and their HMAC).

    Derived from the session cookie under a key of its own: it changes with every sign-in, and
    the page that shows it reveals nothing about the session cookie."""
    key = hashlib.sha256(f"portal.csrf-session:{secret}".encode()).digest()
    part = hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()
    return part + generate_csrf_hash(token=part, secret=secret)


def _csrf_config(request: Request) -> CSRFConfig:
    config = request.app.csrf_config
    if config is None:
        raise RuntimeError("the app has no CSRFConfig")
    return config


def _cookie(config: CSRFConfig, token: str) -> Cookie:
    return Cookie(
        key=config.cookie_name,
        value=token,
        path=config.cookie_path,
        secure=config.cookie_secure,
        httponly=config.cookie_httponly,
        samesite=config.cookie_samesite,
        domain=config.cookie_domain,
    )


def signed_in_csrf_cookie(request: Request, session_token: str) -> Cookie:
    """Set at sign-in: the new session's token replaces whatever the browser had."""
    config = _csrf_config(request)
    return _cookie(config, session_csrf_token(session_token, config.secret))


def signed_out_csrf_cookie(request: Request) -> Cookie:
    """Set at sign-out: a fresh anonymous token, unrelated to the session that ended."""
    config = _csrf_config(request)
    return _cookie(config, generate_csrf_token(config.secret))


def _csrf_cookie_valid(value: str | None, secret: str) -> bool:
    if value is None:
        return True  # nothing to replace
    token, digest = value[:CSRF_SECRET_LENGTH], value[CSRF_SECRET_LENGTH:]
    return len(value) > CSRF_SECRET_LENGTH and hmac.compare_digest(digest, generate_csrf_hash(token=token, secret=secret))


def _set_request_cookie(scope: Scope, name: str, value: str | None) -> None:
    """Rewrite the request's cookies so that ``name`` is ``value`` (or absent), in one header."""
    pairs = []
    headers = []
    for key, raw in scope["headers"]:
        if key == b"cookie":
            pairs += [c.strip() for c in raw.decode("latin-1").split(";") if c.strip() and c.strip().split("=", 1)[0] != name]
        else:
            headers.append((key, raw))
    if value is not None:
        pairs.append(f"{name}={value}")
    if pairs:
        headers.append((b"cookie", "; ".join(pairs).encode("latin-1")))
    scope["headers"] = headers
    state = ScopeState.from_scope(scope)  # parsed headers and cookies are cached per request
    state.headers = state.cookies = Empty


def _setting_cookie(send: Send, cookie: Cookie) -> Send:
    """``send`` that also sets ``cookie``, unless the response sets one of that name itself."""
    prefix = f"{cookie.key}=".encode("latin-1")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.setdefault("headers", [])
            if not any(k.lower() == b"set-cookie" and v.startswith(prefix) for k, v in headers):
                MutableScopeHeaders.from_message(message).add("set-cookie", cookie.to_header(header=""))
        await send(message)

    return wrapped


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(("/api/", "/scim/")):
            # The JSON API: bearer tokens only (portal.api.auth). Cookies are not read there, so
            # a browser's session is no credential on it, and there is nothing to forge.
            scope["user"] = None
            await self.app(scope, receive, send)
            return
        config: CSRFConfig | None = scope["litestar_app"].csrf_config
        connection = ASGIConnection(scope)
        session_token = connection.cookies.get(sessions.COOKIE)
        # The layout's org switcher: a safe request in an org reads the user's orgs with the org
        # (``enter_org``); any other request reads them with the session, in the same statement.
        in_org_page = "slug" in scope.get("path_params", {}) and scope["method"] in SAFE_METHODS
        scope["user"] = await sessions.load(session_token, with_orgs=not in_org_page)
        if config is not None:
            send = self._bind_csrf(scope, send, config, connection.cookies.get(config.cookie_name), session_token)
        if scope["user"] is None and not is_public(scope):
            target = scope["path"]
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            if scope["method"] != "GET":
                target = reverse(scope["litestar_app"], "orgs.list", None, {})  # not the form's own URL
            raise NotSignedIn(urlencode({"next": target}, safe="/"))
        await self.app(scope, receive, send)

    @staticmethod
    def _bind_csrf(scope: Scope, send: Send, config: CSRFConfig, cookie: str | None, session_token: str | None) -> Send:
        state = ScopeState.from_scope(scope)
        if scope["user"] is not None and session_token:
            # Signed in: the session's token is the only one that passes, whatever cookie came.
            token = session_csrf_token(session_token, config.secret)
            state.csrf_token = token  # error pages raised before the CSRF middleware show it too
            if cookie != token:
                _set_request_cookie(scope, config.cookie_name, token)
                send = _setting_cookie(send, _cookie(config, token))
        elif not _csrf_cookie_valid(cookie, config.secret):
            if scope["method"] in ("GET", "HEAD"):
                _set_request_cookie(scope, config.cookie_name, None)  # so a fresh one is issued (e.g. after a key rotation)
        elif cookie is not None:
            state.csrf_token = cookie
        return send
