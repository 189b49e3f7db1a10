"""Keep secret links out of logs.

Invite, password-reset and email-confirmation links carry their secret in the path
(``/invites/<token>``, ``/reset-password/<token>``, ``/verify-email/<token>``), and sign-in pages
carry them in ``next=``. Access logs would keep a copy of every one. ``RedactSecretLinks``
rewrites those segments to ``[redacted]`` in each log record; ``portal.logs`` puts it on every
handler in every worker process, under both servers.
Ids of org pages (``/orgs/<slug>/invites/<uuid>/resend``) are not secrets and stay readable.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_END = r"(?:[/?#&\s\"']|%2[Ff]|$)"
SECRET_LINK = re.compile(rf"(invites|reset-password|verify-email)(/|%2[Ff])(?!{_UUID}{_END})[^/?#&\s\"']+")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _decode_unreserved(text: str) -> str:
    """Undo percent-escapes of letters, digits and ``-._~`` (RFC 3986: same URL), keeping ``%2F``."""

    def one(m: re.Match[str]) -> str:
        char = chr(int(m[1], 16))
        return char if char in _UNRESERVED else m[0]

    return _ESCAPE.sub(one, text)


def redact(text: str) -> str:
    if "%" in text:  # `/inv%69tes/<token>` reaches the same page: redact its plain spelling
        plain = _decode_unreserved(text)
        if plain != text and SECRET_LINK.search(plain):
            text = plain
    return SECRET_LINK.sub(rf"\1\2{REDACTED}", text)


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


# The outbox (no SMTP_URL) prints the link of each mail it saves, by design (SPEC §8: development
# reads it there); the same link already sits in the .eml file next to it.
DELIBERATE = frozenset({"portal.mail.outbox"})


class RedactSecretLinks(logging.Filter):
    """Redacts secret link segments in a record's arguments, its message, and its traceback;
    never drops a record.

    Arguments are redacted one by one, keeping their types (uvicorn's access formatter reads
    them). A link split between the format string and an argument (``"/invites/%s"``) only shows
    in the formatted message: then the record is replaced by its redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in DELIBERATE:
            return True
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        if isinstance(record.msg, str):
            try:
                message = record.getMessage()
            except Exception:  # malformed: the handler reports msg and args, both redacted
                record.msg = redact(record.msg)
            else:
                if redact(message) != message:
                    record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
