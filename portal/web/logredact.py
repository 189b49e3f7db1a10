"""Keep secret links out of logs.

Invite and password-reset links carry their secret in the path (``/invites/<token>``,
``/reset-password/<token>``), and sign-in pages carry them in ``next=``. Access logs would keep a
copy of every one. ``RedactSecretLinks`` rewrites those segments to ``[redacted]`` in each log
record, and ``uvicorn_log_config()`` installs it on the server's handlers in every worker process.
Ids of org pages (``/orgs/<slug>/invites/<uuid>/resend``) are not secrets and stay readable.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[redacted]"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_END = r"(?:[/?#&\s\"']|%2[Ff]|$)"
SECRET_LINK = re.compile(rf"(invites|reset-password)(/|%2[Ff])(?!{_UUID}{_END})[^/?#&\s\"']+")


def redact(text: str) -> str:
    return SECRET_LINK.sub(rf"\1\2{REDACTED}", text)


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecretLinks(logging.Filter):
    """Redacts secret link segments in a record's message and arguments (uvicorn's access log
    passes the path as an argument); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the filter on its handlers and on the app's logger.

    Passed as ``log_config``, so each worker process applies it when it starts."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secret_links"] = {"()": f"{__name__}.RedactSecretLinks"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secret_links")
    # Error pages log the request path of a crash through the "portal" logger.
    config["loggers"]["portal"] = {"level": "INFO", "filters": ["redact_secret_links"]}
    return config
