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
