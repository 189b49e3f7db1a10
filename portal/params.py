"""What comes in from a URL or a form, read one way everywhere: ids, search text, page numbers,
keyset cursors. Malformed input is never an error page: a bad id is "not found", a bad cursor
starts from the beginning, a bad page number is page 1.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from portal.errors import NotFound

MAX_QUERY = 200
MAX_PAGE = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_id(raw: str | None, message: str | None = None) -> UUID:
    """An id from a URL or form; anything that is not a UUID is simply not found (never a 400)."""
    try:
        if raw is None or len(raw) > 64:
            raise ValueError
        return UUID(str(raw).strip())
    except (ValueError, TypeError, AttributeError):
        raise (NotFound(message) if message else NotFound()) from None


def search_text(raw: str | None) -> str:
    """A search box's text: control characters (PostgreSQL refuses NUL) become spaces, runs of
    spaces one, trimmed and bounded."""
    if not raw:
        return ""
    return " ".join(_CONTROL.sub(" ", str(raw)).split())[:MAX_QUERY]


def like_pattern(q: str) -> str:
    """``q`` as a literal substring pattern for ILIKE (its own %, _ and \\ match themselves)."""
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page_number(raw: str | None) -> int:
    try:
        return min(max(int(raw or 1), 1), MAX_PAGE)
    except (ValueError, TypeError):
        return 1


# -- keyset cursors -----------------------------------------------------------------------------
# One format for every "next page" link: the sort key of the last row shown, as a base64url JSON
# array. Opaque to people, readable by us, and typed on the way back in.


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def encode_cursor(*key: Any) -> str:
    raw = json.dumps([_plain(v) for v in key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _typed(kind: type, value: Any) -> Any:
    if kind in (datetime, UUID, str):
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError("not a string")
        value.encode("utf-8")  # a lone surrogate raises: PostgreSQL would refuse it
    if kind is datetime:
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError("naive time")
        return at.astimezone(timezone.utc)  # year 1 or 9999 with an offset overflows here, not in the driver
    if kind is UUID:
        return UUID(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError("wrong type")
    return value


def decode_cursor(raw: str | None, *kinds: type) -> tuple | None:
    """The key ``encode_cursor`` wrote, with each part checked against ``kinds``; None for a
    missing or malformed cursor (the list then starts at the beginning)."""
    if not raw or len(raw) > 600:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(values, list) or len(values) != len(kinds):
            return None
        return tuple(_typed(kind, value) for kind, value in zip(kinds, values))
    except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError, OverflowError, RecursionError):
        return None
