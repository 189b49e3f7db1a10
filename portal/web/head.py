"""HEAD wherever GET: a HEAD request runs as the GET it stands for, and only its headers are sent.

Litestar answers HEAD only on routes that declare it (RFC 9110 asks every GET resource to answer
it). Wrapped around the whole app (routing included), this answers it everywhere with the GET's
status and headers, ``Content-Length`` included, and no body. Everything inside sees a GET: the
same permission checks, the same pages; the access log (outside) still records the HEAD.

A handler whose GET has an effect beyond reading (a download is audited, and streams the whole
archive out of the database) asks ``is_head(request.scope)`` and answers with headers alone.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send


HEAD_KEY = "portal.head"


def is_head(scope: Scope) -> bool:
    """Whether this GET stands for a HEAD (only its headers will be sent)."""
    return bool(scope.get(HEAD_KEY))  # type: ignore[misc]


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_KEY: True}, receive, headers_only)  # type: ignore[typeddict-item]


def _served(app) -> dict[str, frozenset[str]]:
    """Each path template's methods, across all its handlers (read once per app)."""
    served = app.state.get("_served_methods")
    if served is None:
        served = {}
        for route in app.routes:
            methods = set(served.get(route.path_format, ()))
            for handler in getattr(route, "route_handlers", ()):
                methods |= set(handler.http_methods)
            served[route.path_format] = frozenset(methods)
        app.state["_served_methods"] = served
    return served


async def allow_every_method(message: Message, scope: Scope) -> None:
    """``OPTIONS`` answers ``Allow`` with every method its path serves (Litestar's automatic answer
    lists only the methods of one of the path's handlers: a GET and a POST at one path gave
    ``GET, OPTIONS``), plus HEAD wherever GET (``HeadAsGet``)."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS" or message["status"] >= 300:
        return
    app = scope.get("app") or scope.get("litestar_app")
    template = scope.get("path_template")
    if app is None or template is None:
        return
    methods = set(_served(app).get(template, ())) | {"OPTIONS"}
    if "GET" in methods:
        methods.add("HEAD")
    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
    headers.append((b"allow", ", ".join(sorted(methods)).encode("latin-1")))
    message["headers"] = headers
