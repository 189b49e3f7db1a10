"""What goes into an export: one exporter per file, in one registry.

An exporter reads one kind of record through the org's ``TenantScope`` in keyset-paginated pages
(no cursor on a connection of its own, never one unbounded fetch) and turns each row into a record
with stable, documented field names (``docs/export-format.md``; the JSON Schema is ``record_schema``).

Each exported field is declared once, as a ``portal.records.Field``: its name, its JSON Schema, the SQL that
selects it and how the selected value is written. ``fields_exporter`` derives the SELECT list, the
record and the file's schema from that list. Features plug their content in with
``register(fields_exporter(...))`` (or ``register(Exporter(...))`` for a file of another shape).
An exporter names the tenant tables it reads (``requires``); if one of them is not registered in
this deployment, its file is still written, empty, with a record count of 0 — the archive's file
list never changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Literal, Mapping, Sequence

from portal import clock
from portal.audit.redact import in_audit_event
from portal.db import registry
from portal.records import (
    ANY,
    CREATED_AT,
    ID,
    INTEGER,
    STRING,
    TIMESTAMP,
    Field,
    array_of,
    enum,
    fields_schema,
    iso_field,
    json_value,
    nested,
    nullable,
    select_list,
    to_record,
    uid_field,
)
from portal.resources.agents.service import AGENTS
from portal.resources.connections.service import CONNECTIONS
from portal.resources.teams.service import TEAMS
from portal.resources.workflows.service import WORKFLOWS
from portal.roles.service import ROLES
from portal.tenancy.permissions import Role
from portal.tenancy.scope import TenantScope

Layout = Literal["object", "array", "lines"]
Pages = Callable[[TenantScope, int], AsyncIterator[list[dict]]]


@dataclass(frozen=True)
class Exporter:
    filename: str
    layout: Layout  # "object": one record; "array": a JSON array; "lines": JSON Lines
    record_schema: dict
    count: Callable[[TenantScope], Awaitable[int]]
    pages: Pages
    requires: tuple[str, ...] = ()
    description: str = ""

    def available(self) -> bool:
        registry.load_all()
        return all(name in registry.TENANT_TABLES for name in self.requires)

    def file_schema(self) -> dict:
        return array_of(self.record_schema) if self.layout == "array" else self.record_schema


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    """Add (or replace) the exporter of ``exporter.filename``. Files appear in registration order."""
    if exporter.filename == "manifest.json" or "/" in exporter.filename:
        raise ValueError(f"invalid export file name {exporter.filename!r}")
    EXPORTERS[exporter.filename] = exporter
    return exporter


def exporters() -> list[Exporter]:
    return list(EXPORTERS.values())


# -- keyset pagination over raw, scoped SQL -------------------------------------------------------
# The key every array file is written in: creation time, then id (oldest first).
BY_CREATED = (("t.created_at", "_key_created_at"), ("t.id", "_key_id"))


async def keyset_pages(
    scope: TenantScope, select: str, keys: Sequence[tuple[str, str]], page_size: int, *args: Any
) -> AsyncIterator[list]:
    """Walk ``select`` page by page in key order.

    ``select`` is a ``SELECT … WHERE …`` with its org filter placed as ``{org}`` (bound by the
    scope, the one way tenant SQL is templated) and its own parameters ``$1…`` (``args``); it
    selects each key expression under the column name ``keys`` pairs it with. Each page appends,
    as plain SQL with the next numbered parameters, the keyset condition (after the last row of
    the page before, from the second page on), the key order and the page size.
    """
    exprs = ", ".join(expr for expr, _ in keys)
    n = len(args)
    first = f"{select} ORDER BY {exprs} LIMIT ${n + 1}"
    slots = ", ".join(f"${n + i + 1}" for i in range(len(keys)))
    following = f"{select} AND ({exprs}) > ({slots}) ORDER BY {exprs} LIMIT ${n + len(keys) + 1}"
    last: tuple | None = None
    while True:
        if last is None:
            rows = await scope.fetch(first, *args, page_size)
        else:
            rows = await scope.fetch(following, *args, *last, page_size)
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        last = tuple(rows[-1][column] for _, column in keys)


async def _one(scope: TenantScope) -> int:
    return 1


def fields_exporter(
    filename: str,
    table: str,
    fields: Sequence[Field],
    *,
    description: str,
    layout: Layout = "array",
    requires: tuple[str, ...] | None = None,
    joins: str = "",
    where: str = "",
    params: Callable[[], tuple] = tuple,
    org_column: str = "org_id",
) -> Exporter:
    """The exporter of ``table`` (aliased ``t``) as ``fields``: every row of the org, oldest first
    (``layout`` "array" or "lines"), or the one row of the org (``layout`` "object").

    ``joins`` add columns (never rows: the count reads the table alone); ``where`` adds conditions
    on ``t`` (``AND …``) that may use ``params()`` as ``$1…``; ``requires`` defaults to the table.
    """
    columns = select_list(fields)
    convert = to_record(fields)
    rows_of = f"FROM {table} t WHERE t.{org_column} = {{org}} {where}".rstrip()
    base = f"FROM {table} t {joins} WHERE t.{org_column} = {{org}} {where}".rstrip() if joins else rows_of

    if layout == "object":
        statement = f"SELECT {columns} {base}"

        async def one_row(scope: TenantScope, page_size: int) -> AsyncIterator[list[dict]]:
            row = await scope.fetchrow(statement, *params())
            if row is not None:
                yield [convert(row)]

        count, pages = _one, one_row
    else:
        keys = ", ".join(f"{expr} AS {column}" for expr, column in BY_CREATED)
        select = f"SELECT {columns}, {keys} {base}"
        counting = f"SELECT count(*) {rows_of}"  # the joins add fields, never rows

        async def all_rows(scope: TenantScope, page_size: int) -> AsyncIterator[list[dict]]:
            async for rows in keyset_pages(scope, select, BY_CREATED, page_size, *params()):
                yield [convert(row) for row in rows]

        async def count_rows(scope: TenantScope) -> int:
            return int(await scope.fetchval(counting, *params()) or 0)

        count, pages = count_rows, all_rows
    return Exporter(
        filename=filename,
        layout=layout,
        record_schema=fields_schema(fields),
        count=count,
        pages=pages,
        requires=(table,) if requires is None else requires,
        description=description,
    )


# -- the organization and its people --------------------------------------------------------------
register(
    fields_exporter(
        "organization.json",
        "organization",
        [
            uid_field("id"),
            Field("slug", STRING),
            Field("name", STRING),
            CREATED_AT,
            nested(
                "billing",
                Field("plan", nullable(STRING), "b.plan"),
                Field("billing_email", nullable(STRING), "b.billing_email"),
                Field("seat_limit", nullable(INTEGER), "b.seat_limit"),
                Field("spend_cap_cents", nullable(INTEGER), "b.spend_cap_cents"),
                iso_field("updated_at", nullable(TIMESTAMP), "b.updated_at"),
            ),
        ],
        layout="object",
        org_column="id",
        joins="LEFT JOIN billing_settings b ON b.org_id = t.id AND b.org_id = {org}",
        requires=("billing_settings",),
        description="The organization and its settings, billing included.",
    )
)

register(
    fields_exporter(
        "members.json",
        "membership",
        [
            uid_field("membership_id", sql="t.id"),
            uid_field("user_id"),
            Field("email", STRING, "u.email"),
            Field("name", STRING, "u.name"),
            Field("role", enum(*(r.value for r in Role))),
            uid_field("custom_role_id", nullable(ID)),
            iso_field("joined_at", sql="t.created_at"),
        ],
        joins="JOIN app_user u ON u.id = t.user_id",
        description="Everyone in the organization, in joining order. A custom role's id refers to roles.json.",
    )
)


# -- resources: teams, agents, workflows, connections ---------------------------------------------
# Each resource declares its export with its other fields (``Resource.export``); the files keep
# this order, part of the archive's format.
for _resource in (TEAMS, AGENTS, WORKFLOWS, CONNECTIONS, ROLES):
    _export = _resource.export
    register(
        fields_exporter(
            _export.filename, _resource.table, _export.fields, joins=_export.joins, requires=_export.requires,
            description=_export.description,
        )
    )


# -- invites and the audit log --------------------------------------------------------------------
def _now() -> tuple:
    return (clock.now(),)


register(
    fields_exporter(
        "invites.json",
        "invite",
        [  # the token hash is never selected
            uid_field("id"),
            Field("email", STRING),
            Field("role", enum(*(r.value for r in Role if r != Role.OWNER))),
            uid_field("custom_role_id", nullable(ID)),
            uid_field("invited_by", nullable(ID)),
            Field("invited_by_email", nullable(STRING), "u.email"),
            CREATED_AT,
            iso_field("expires_at"),
        ],
        joins="LEFT JOIN app_user u ON u.id = t.invited_by",
        # Pending invites only.
        where="AND t.accepted_at IS NULL AND t.revoked_at IS NULL AND t.superseded_at IS NULL AND t.expires_at > $1",
        params=_now,
        description="Pending invites (not accepted, revoked, replaced by a resend, or expired). Tokens are never exported.",
    )
)


def _audited(column: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: in_audit_event(row["action"], json_value(row[column]))


register(
    fields_exporter(
        "audit_log.jsonl",
        "audit_event",
        [
            uid_field("id"),
            CREATED_AT,
            uid_field("actor_id", nullable(ID)),
            Field("actor_email", nullable(STRING)),
            Field("action", STRING),
            Field("target_type", nullable(STRING)),
            Field("target_id", nullable(STRING)),
            Field("target_label", nullable(STRING)),
            Field("before", ANY, from_row=_audited("before")),
            Field("after", ANY, from_row=_audited("after")),
            Field("ip", nullable(STRING)),
            uid_field("actor_token_id", nullable(ID)),
            Field("actor_label", nullable(STRING)),
        ],
        layout="lines",
        description="The audit log, oldest first, one event per line.",
    )
)

__all__ = ["EXPORTERS", "Exporter", "Layout", "exporters", "fields_exporter", "keyset_pages", "register"]
