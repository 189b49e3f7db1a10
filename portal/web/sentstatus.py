"""The status a response was actually sent with, for the access log and the metrics."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Send = Callable[[dict[str, Any]], Awaitable[None]]


class SentStatus:
    """Wraps an ASGI ``send``: ``status`` is that of the ``http.response.start`` that went out —
    whichever layer sent it (a handler, an exception handler answering a middleware's 403 or 429)
    — and 500 if none did (the app failed before answering)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)
