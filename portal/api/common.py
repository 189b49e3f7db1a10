"""What every JSON API route shares: field types stated for the OpenAPI document, versions
(``ETag``/``If-Match``), the ``next`` link of a keyset page, and decoding a body into the
strings a form would have sent (the pages' validation then reads it, once for both)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request
from msgspec import Meta

from portal.errors import DomainError
from portal.resources import common

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class PreconditionFailed(DomainError):
    status_code = 412
    title = "Precondition failed"


# The same limits as the pages' fields (portal.resources.common), stated for the OpenAPI document
# and checked by msgspec as the body is decoded: no control characters, not blank.
_BLANK = "".join(c for c in common.SPACE if c not in "\t\n\r\x0b\x0c")
_LINE = common.CONTROL_SINGLE_LINE
Name = Annotated[str, Meta(
    min_length=1, max_length=common.NAME_MAX, pattern=f"^[^{_LINE}]*[^{_LINE}{_BLANK}][^{_LINE}]*$",
    description="Unique in the organization (case-insensitive); no control characters",
)]
Description = Annotated[str, Meta(
    max_length=common.DESCRIPTION_MAX, pattern=f"^[^{common.CONTROL}]*$", description="No control characters but tab and newlines",
)]
JSONObject = dict[str, Any]


def etag(row: Any) -> str:
    """A version of a row: its id and when it last changed."""
    return '"' + hashlib.sha256(f"{row['id']}:{row['updated_at'].isoformat()}".encode()).hexdigest()[:32] + '"'


def check_version(request: Request, row: Any, noun: str) -> None:
    """With ``If-Match``, refuse (412) unless ``row`` is still the version it names."""
    wanted = request.headers.get("if-match")
    if wanted is not None and wanted.strip() not in ("*", etag(row)):
        raise PreconditionFailed(f"The {noun} changed since you read it: read it again, then apply your change.")


def next_link(request: Request, cursor: str | None, limit: int, **query: Any) -> str | None:
    """The URL of the page after this one (None at the end), keeping the list's filters."""
    if cursor is None:
        return None
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{request.url.path}?{urlencode({'limit': limit, 'after': cursor, **kept})}"


def form_value(value: Any) -> str:
    """A decoded JSON value as a form field would carry it."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def as_form(values: msgspec.Struct) -> dict[str, str]:
    """The fields a body gave (unset ones left out), as a form would have posted them."""
    return {k: form_value(v) for k, v in msgspec.structs.asdict(values).items() if v is not msgspec.UNSET}


def of_row(kind: type[msgspec.Struct], row: Any) -> Any:
    """A row as the API type ``kind``: the columns named like its fields."""
    return kind(**{f: row[f] for f in kind.__struct_fields__})
