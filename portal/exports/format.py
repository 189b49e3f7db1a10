"""The archive format: version, value encodings and JSON Schemas (documented in docs/export-format.md).

Field names are a public contract: add fields only with a new ``FORMAT_VERSION``; never rename.
Every file's records are described by a JSON Schema (draft 2020-12), so a consumer — and our own
tests — can validate an archive mechanically.
"""

from __future__ import annotations

import json
from typing import Any

# The value encodings and schema building blocks live with the field declarations they serve.
from portal.records import ID, SHA256, STRING, TIMESTAMP, array_of, enum, nullable, record

FORMAT_NAME = "praesidia-org-export"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"

def dumps(value: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False).encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


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
