"""The archive format: version, value encodings and JSON Schemas (documented in docs/export-format.md).

Field names are a public contract: add fields only with a new ``FORMAT_VERSION``; never rename.
Every file's records are described by a JSON Schema (draft 2020-12), so a consumer — and our own
tests — can validate an archive mechanically.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

FORMAT_NAME = "praesidia-org-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REDACTED = "[redacted]"

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC with microseconds and a ``Z``: ``2026-11-29T13:00:00.000000Z``."""
    if value is None:
        return None
    if value.tzinfo is None:  # timestamptz always comes back aware; be strict anyway
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def uid(value: UUID | str | None) -> str | None:
    return None if value is None else str(value)


def json_value(raw: Any) -> Any:
    """A json/jsonb column as a value (asyncpg returns the text unless a codec is set)."""
    if raw is None or not isinstance(raw, (str, bytes)):
        return raw
    return json.loads(raw)


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False).encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# -- JSON Schema building blocks ------------------------------------------------------------------
TIMESTAMP: dict = {"type": "string", "pattern": TIMESTAMP_PATTERN}
ID: dict = {"type": "string", "pattern": UUID_PATTERN}
SHA256: dict = {"type": "string", "pattern": r"^[0-9a-f]{64}$"}
STRING: dict = {"type": "string"}
INTEGER: dict = {"type": "integer"}
BOOLEAN: dict = {"type": "boolean"}
OBJECT: dict = {"type": "object"}
ANY: dict = {}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def enum(*values: str) -> dict:
    return {"type": "string", "enum": list(values)}


def record(**properties: dict) -> dict:
    """An object with exactly these fields, all present (null where a value is absent)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def array_of(item: dict) -> dict:
    return {"type": "array", "items": item}


MANIFEST_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **record(
        format=enum(FORMAT_NAME),
        format_version={"const": FORMAT_VERSION},
        export_id=ID,
        organization=record(id=ID, slug=STRING, name=STRING),
        generated_at=TIMESTAMP,
        generated_by=record(user_id=nullable(ID), email=STRING),
        files=array_of(record(name=STRING, records={"type": "integer", "minimum": 0}, bytes={"type": "integer", "minimum": 0}, sha256=SHA256)),
    ),
}
