"""Security headers on every response — errors and 404s of unknown paths included.

Litestar's app-level ``response_headers`` skip error responses, so this is a ``before_send`` hook:
it sees every ``http.response.start`` the application sends.
"""

from __future__ import annotations

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


# The same headers as raw ASGI pairs, encoded once (a response adds them without parsing any).
_RAW = tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in BASE_HEADERS.items())
_NO_STORE = (b"cache-control", b"no-store")
_STATIC_CACHE = (b"cache-control", b"public, max-age=3600")
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = message.setdefault("headers", [])
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers)
    present = {name.lower() for name, _ in headers}
    headers.extend(pair for pair in _RAW if pair[0] not in present)
    if b"cache-control" not in present:
        # Pages depend on who is signed in: never let a browser or proxy keep them.
        headers.append(_STATIC_CACHE if scope.get("path", "").startswith("/static/") else _NO_STORE)
    if b"strict-transport-security" not in present and (
        scope.get("scheme") == "https" or scope.get("app") and getattr(scope["app"].state, "secure", False)
    ):
        headers.append(_HSTS)
