"""The one logging configuration, for uvicorn and granian alike.

`portal serve` hands it to the server (uvicorn's ``log_config``, granian's ``log_dictconfig``),
so the server's own start-up lines go through it, and ``portal.app.asgi()`` applies it again in
every worker after the app is built (Litestar's own ``LoggingConfig`` replaces the root handlers).
Every handler carries the secret-link redaction filter. The servers' access logs stay off: the
app writes the only one (``portal.access``, see ``portal.web.accesslog``), switched on by
``portal serve --access-log`` (or ``PORTAL_ACCESS_LOG=1``).
"""

from __future__ import annotations

import copy
import logging
import logging.config
import os
from typing import Any

from portal.web.logredact import RedactSecretLinks

ACCESS_LOGGER = "portal.access"
ACCESS_LOG_ENV = "PORTAL_ACCESS_LOG"  # how `--access-log` reaches the worker processes
REDACT_FILTER = "redact_secret_links"

# Keyed by name so another format (JSON) is one more entry and a choice of handler formatter.
FORMATTERS: dict[str, dict[str, Any]] = {
    "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
}


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
        "filters": {REDACT_FILTER: {"()": f"{RedactSecretLinks.__module__}.{RedactSecretLinks.__qualname__}"}},
        "formatters": copy.deepcopy(FORMATTERS),
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "text",
                "filters": [REDACT_FILTER],
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
