"""Records as programs read them: field by field, each declared once.

A ``Field`` names one field of a record, its JSON Schema, the SQL that selects it and how the
selected value is written (ids and times as strings, JSON as values). The export archive
(``portal.exports``) and the resource declarations (``portal.resources``) describe their records
with it, so the SELECT list, the record and its schema come from one list and never drift apart.
Field names are a public contract (``docs/export-format.md``): add fields, never rename them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence
from uuid import UUID

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


# -- fields ---------------------------------------------------------------------------------------
def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One field of an exported record, declared once.

    ``sql`` is the expression that selects it (``t`` is the exported table; default ``t.<name>``);
    ``convert`` turns the selected value into the record's value. A value that also depends on
    other fields' columns comes from ``from_row`` instead (given the whole row). ``parts``: a
    nested record of fields of its own (see ``nested``).
    """

    name: str
    schema: dict
    sql: str = ""
    convert: Callable[[Any], Any] = _same
    from_row: Callable[[Mapping[str, Any]], Any] | None = None
    parts: tuple[Field, ...] = ()
    column: str = ""  # the name it is selected as (default: ``name``; a nested field's is prefixed)

    @property
    def alias(self) -> str:
        return self.column or self.name

    def select(self) -> list[str]:
        if self.parts:
            return [item for part in self.parts for item in part.select()]
        return [f"{self.sql or 't.' + self.name} AS {self.alias}"]

    def value(self, row: Mapping[str, Any]) -> Any:
        if self.parts:
            return {part.name: part.value(row) for part in self.parts}
        if self.from_row is not None:
            return self.from_row(row)
        return self.convert(row[self.alias])


def nested(name: str, *parts: Field) -> Field:
    """A field holding a record of ``parts`` (selected as ``<name>_<part>``)."""
    prefixed = tuple(replace(part, column=f"{name}_{part.alias}") for part in parts)
    return Field(name, record(**{part.name: part.schema for part in parts}), parts=prefixed)


def fields_schema(fields: Sequence[Field]) -> dict:
    return record(**{f.name: f.schema for f in fields})


def select_list(fields: Sequence[Field]) -> str:
    items = [item for f in fields for item in f.select()]
    aliases = [item.rsplit(" AS ", 1)[1] for item in items]
    if len(set(aliases)) != len(aliases):
        raise ValueError(f"export fields select a column twice: {aliases}")
    return ", ".join(items)


def to_record(fields: Sequence[Field]) -> Callable[[Mapping[str, Any]], dict]:
    def convert(row: Mapping[str, Any]) -> dict:
        return {f.name: f.value(row) for f in fields}

    return convert


def iso_field(name: str, schema: dict = TIMESTAMP, sql: str = "") -> Field:
    return Field(name, schema, sql, convert=iso)


def uid_field(name: str, schema: dict = ID, sql: str = "") -> Field:
    return Field(name, schema, sql, convert=uid)


CREATED_AT, UPDATED_AT = iso_field("created_at"), iso_field("updated_at")
