"""The access log, written by the app so it reads the same under uvicorn and granian.

One line per HTTP request on ``portal.access``: client, method, path and query (secret links
redacted here, before the record exists), status, duration. The fields also travel on the record
as ``record.access`` (a dict), for a structured formatter. Off unless ``portal.access`` is enabled
for INFO (``portal serve --access-log``); then it costs one level check per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from portal.web.logredact import redact
from portal.web.sentstatus import SentStatus

log = logging.getLogger("portal.access")

Scope = dict[str, Any]
FORMAT = '%s - "%s %s HTTP/%s" %d %.1fms'


def request_target(scope: Scope) -> str:
    """Path and query as uvicorn logs them, redacted."""
    target = quote(scope.get("root_path", "") + scope["path"])
    if query := scope.get("query_string", b""):
        target += "?" + query.decode("latin-1")
    return redact(target)


class AccessLogMiddleware:
    """Pure ASGI, outermost but for the proxy headers (so ``client`` is the real client)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        sent = SentStatus(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            client = scope.get("client")
            fields = {
                "client": client[0] if client else "-",
                "method": scope["method"],
                "target": request_target(scope),
                "http_version": scope.get("http_version", "1.1"),
                "status": sent.status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 1),
            }
            log.info(FORMAT, *fields.values(), extra={"access": fields})
