"""The one logging configuration, for uvicorn and granian alike.

`portal serve` hands it to the server (uvicorn's ``log_config``, granian's ``log_dictconfig``),
so the server's own start-up lines go through it, and ``portal.app.asgi()`` applies it again in
every worker after the app is built (Litestar's own ``LoggingConfig`` replaces the root handlers).
Every handler carries the secret-link redaction filter. The servers' access logs stay off: the
app writes the only one (``portal.access``, see ``portal.web.accesslog``), switched on by
``portal serve --access-log`` (or ``PORTAL_ACCESS_LOG=1``).
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import logging.config
import os
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from portal.web.logredact import RedactSecretLinks

ACCESS_LOGGER = "portal.access"
ACCESS_LOG_ENV = "PORTAL_ACCESS_LOG"  # how `--access-log` reaches the worker processes
REDACT_FILTER = "redact_secret_links"

LOG_FORMAT_ENV = "LOG_FORMAT"  # "text" (default) or "json": one JSON object per line
REQUEST_ID_FILTER = "request_id"

# The request being served, for every log line written while it is (``RequestIdMiddleware``).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # an id a proxy in front may pass on (X-Request-ID)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestIdMiddleware:
    """Gives each HTTP request an id — the one a trusted proxy sent as ``X-Request-ID``, if it is
    well-formed, else a new one — for its log lines and its response's ``X-Request-ID``.

    Trusted means the direct peer is in ``FORWARDED_ALLOW_IPS``, the rule for ``X-Forwarded-For``
    (``portal.web.proxy``): a client talking to the portal directly cannot choose the id its
    requests are logged under. Wrap it outside the proxy-headers middleware, which replaces the
    peer in the scope with the forwarded client."""

    def __init__(self, app: Any, trusted: Any) -> None:
        self.app = app
        self.trusted = trusted  # uvicorn's parsed FORWARDED_ALLOW_IPS (``"10.0.0.2" in trusted``)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        given = ""
        if (peer[0] if peer else None) in self.trusted:
            given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-request-id"), "")
        rid = given if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


# Keyed by name: LOG_FORMAT picks the handler's.
FORMATTERS: dict[str, dict[str, Any]] = {
    "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
    "json": {"()": f"{__name__}.JsonFormatter"},
}


def log_format() -> str:
    chosen = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() or "text"
    return chosen if chosen in FORMATTERS else "text"


def access_log_enabled() -> bool:
    return os.environ.get(ACCESS_LOG_ENV, "") == "1"


def logging_config(access_log: bool | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stderr handler, redaction filter on it."""
    if access_log is None:
        access_log = access_log_enabled()
    quiet = {"handlers": [], "propagate": False}  # the servers' access logs: the app writes its own
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            REDACT_FILTER: {"()": f"{RedactSecretLinks.__module__}.{RedactSecretLinks.__qualname__}"},
            REQUEST_ID_FILTER: {"()": f"{__name__}.RequestIdFilter"},
        },
        "formatters": copy.deepcopy(FORMATTERS),
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": log_format(),
                "filters": [REDACT_FILTER, REQUEST_ID_FILTER],
            },
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "portal": {"level": "INFO"},
            ACCESS_LOGGER: {"level": "INFO" if access_log else "WARNING"},
            "litestar": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.access": quiet,
            "_granian": {"level": "INFO", "handlers": [], "propagate": True},
            "granian.access": quiet,
        },
    }


def configure(access_log: bool | None = None) -> None:
    """Apply the configuration in this process, then make sure no handler lacks the filter
    (a handler some library attached outside the configuration would otherwise bypass it)."""
    logging.config.dictConfig(logging_config(access_log))
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactSecretLinks) for f in handler.filters):
                handler.addFilter(RedactSecretLinks())
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                handler.addFilter(RequestIdFilter())
