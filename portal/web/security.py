"""Security headers on every response — errors and 404s of unknown paths included.

Litestar's app-level ``response_headers`` skip error responses, so this is a ``before_send`` hook:
it sees every ``http.response.start`` the application sends.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

BASE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in BASE_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if "Cache-Control" not in headers:
        # Pages depend on who is signed in: never let a browser or proxy keep them.
        path = scope.get("path", "")
        headers["Cache-Control"] = "public, max-age=3600" if path.startswith("/static/") else "no-store"
    if scope.get("scheme") == "https" or scope.get("app") and getattr(scope["app"].state, "secure", False):
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
