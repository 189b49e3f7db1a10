"""What goes into an export: one exporter per file, in one registry.

An exporter reads one kind of record through the org's ``TenantScope`` in keyset-paginated pages
(no cursor on a connection of its own, never one unbounded fetch) and turns each row into a record with stable,
documented field names (``docs/export-format.md``; the JSON Schema is ``record_schema``).

Features plug their content in with ``register(Exporter(...))``. An exporter names the tenant
tables it reads (``requires``); if one of them is not registered in this deployment, its file is
still written, empty, with a record count of 0 — the archive's file list never changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Literal, Sequence

from portal import clock
from portal.db import registry
from portal.resources.connections.kinds import in_audit_event, without_credentials
from portal.exports.format import (
    BOOLEAN,
    ID,
    INTEGER,
    OBJECT,
    REDACTED,
    STRING,
    TIMESTAMP,
    ANY,
    array_of,
    enum,
    iso,
    json_value,
    nullable,
    record,
    uid,
)
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
async def keyset_pages(
    scope: TenantScope, sql: str, keys: Sequence[tuple[str, str]], page_size: int, *args: Any
) -> AsyncIterator[list]:
    """Walk ``sql`` page by page in key order.

    ``sql`` places its org filter with ``{org}``, the keyset condition with ``{after}`` (an
    ``AND (…) > (…)`` clause) and the page size with ``{limit}``; it orders by the key
    expressions. ``keys`` pairs each key expression with the column it is selected as. Extra
    ``args`` are ``$1…``; the keyset values follow them.
    """
    last: tuple | None = None
    exprs = ", ".join(expr for expr, _ in keys)
    while True:
        params = list(args)
        after = ""
        if last is not None:
            slots = ", ".join(f"${len(params) + i + 1}" for i in range(len(keys)))
            after = f"AND ({exprs}) > ({slots})"
            params += list(last)
        query = sql.replace("{after}", after).replace("{limit}", f"${len(params) + 1}")
        rows = await scope.fetch(query, *params, page_size)
        if not rows:
            return
        yield rows
        if len(rows) < page_size:
            return
        last = tuple(rows[-1][column] for _, column in keys)


def sql_pages(
    sql: str,
    keys: Sequence[tuple[str, str]],
    to_record: Callable[[Any], dict],
    params: Callable[[], tuple] = tuple,
) -> Pages:
    """Pages of records from ``sql`` (see ``keyset_pages``); ``params()`` gives its ``$1…``."""

    async def pages(scope: TenantScope, page_size: int) -> AsyncIterator[list[dict]]:
        async for rows in keyset_pages(scope, sql, keys, page_size, *params()):
            yield [to_record(row) for row in rows]

    return pages


def sql_count(sql: str, params: Callable[[], tuple] = tuple) -> Callable[[TenantScope], Awaitable[int]]:
    async def count(scope: TenantScope) -> int:
        return int(await scope.fetchval(sql, *params()) or 0)

    return count


BY_CREATED = (("t.created_at", "created_at"), ("t.id", "id"))


# -- organization.json -----------------------------------------------------------------------------
_ORGANIZATION = """
SELECT o.id, o.slug, o.name, o.created_at,
       b.plan, b.billing_email, b.seat_limit, b.spend_cap_cents, b.updated_at AS billing_updated_at
FROM organization o
LEFT JOIN billing_settings b ON b.org_id = o.id AND b.org_id = {org}
WHERE o.id = {org}
"""


async def _organization_pages(scope: TenantScope, page_size: int) -> AsyncIterator[list[dict]]:
    row = await scope.fetchrow(_ORGANIZATION)
    if row is None:
        return
    yield [
        {
            "id": uid(row["id"]),
            "slug": row["slug"],
            "name": row["name"],
            "created_at": iso(row["created_at"]),
            "billing": {
                "plan": row["plan"],
                "billing_email": row["billing_email"],
                "seat_limit": row["seat_limit"],
                "spend_cap_cents": row["spend_cap_cents"],
                "updated_at": iso(row["billing_updated_at"]),
            },
        }
    ]


async def _one(scope: TenantScope) -> int:
    return 1


register(
    Exporter(
        filename="organization.json",
        layout="object",
        requires=("billing_settings",),
        count=_one,
        pages=_organization_pages,
        description="The organization and its settings, billing included.",
        record_schema=record(
            id=ID,
            slug=STRING,
            name=STRING,
            created_at=TIMESTAMP,
            billing=record(
                plan=nullable(STRING),
                billing_email=nullable(STRING),
                seat_limit=nullable(INTEGER),
                spend_cap_cents=nullable(INTEGER),
                updated_at=nullable(TIMESTAMP),
            ),
        ),
    )
)


# -- members.json ----------------------------------------------------------------------------------
_MEMBERS = """
SELECT t.id, t.created_at, t.user_id, t.role, u.email, u.name
FROM membership t JOIN app_user u ON u.id = t.user_id
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="members.json",
        layout="array",
        requires=("membership",),
        count=sql_count("SELECT count(*) FROM membership WHERE org_id = {org}"),
        pages=sql_pages(
            _MEMBERS,
            BY_CREATED,
            lambda r: {
                "membership_id": uid(r["id"]),
                "user_id": uid(r["user_id"]),
                "email": r["email"],
                "name": r["name"],
                "role": r["role"],
                "joined_at": iso(r["created_at"]),
            },
        ),
        description="Everyone in the organization, in joining order.",
        record_schema=record(
            membership_id=ID,
            user_id=ID,
            email=STRING,
            name=STRING,
            role=enum(*(r.value for r in Role)),
            joined_at=TIMESTAMP,
        ),
    )
)


# -- teams.json ------------------------------------------------------------------------------------
_TEAMS = """
SELECT t.id, t.name, t.description, t.created_at, t.updated_at,
       coalesce(tm.membership_ids, ARRAY[]::uuid[]) AS membership_ids,
       coalesce(tm.emails, ARRAY[]::text[]) AS emails
FROM team t
LEFT JOIN LATERAL (
    SELECT array_agg(x.membership_id ORDER BY x.created_at, x.id) AS membership_ids,
           array_agg(u.email::text ORDER BY x.created_at, x.id) AS emails
    FROM team_member x
    JOIN membership m ON m.org_id = {org} AND m.id = x.membership_id
    JOIN app_user u ON u.id = m.user_id
    WHERE x.org_id = {org} AND x.team_id = t.id
) tm ON true
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="teams.json",
        layout="array",
        requires=("team", "team_member"),
        count=sql_count("SELECT count(*) FROM team WHERE org_id = {org}"),
        pages=sql_pages(
            _TEAMS,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "name": r["name"],
                "description": r["description"],
                "members": [
                    {"membership_id": uid(m), "email": e} for m, e in zip(r["membership_ids"], r["emails"])
                ],
                "created_at": iso(r["created_at"]),
                "updated_at": iso(r["updated_at"]),
            },
        ),
        description="Teams and their members (membership ids refer to members.json).",
        record_schema=record(
            id=ID,
            name=STRING,
            description=STRING,
            members=array_of(record(membership_id=ID, email=STRING)),
            created_at=TIMESTAMP,
            updated_at=TIMESTAMP,
        ),
    )
)


# -- agents.json -----------------------------------------------------------------------------------
_AGENTS = """
SELECT t.id, t.name, t.description, t.model, t.status, t.created_by, t.created_at, t.updated_at
FROM agent t
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="agents.json",
        layout="array",
        requires=("agent",),
        count=sql_count("SELECT count(*) FROM agent WHERE org_id = {org}"),
        pages=sql_pages(
            _AGENTS,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "name": r["name"],
                "description": r["description"],
                "model": r["model"],
                "status": r["status"],
                "created_by": uid(r["created_by"]),
                "created_at": iso(r["created_at"]),
                "updated_at": iso(r["updated_at"]),
            },
        ),
        description="AI agents.",
        record_schema=record(
            id=ID,
            name=STRING,
            description=STRING,
            model=STRING,
            status=enum("active", "paused"),
            created_by=nullable(ID),
            created_at=TIMESTAMP,
            updated_at=TIMESTAMP,
        ),
    )
)


# -- workflows.json --------------------------------------------------------------------------------
_WORKFLOWS = """
SELECT t.id, t.name, t.description, t.definition, t.agent_id, t.enabled, t.created_by, t.created_at, t.updated_at
FROM workflow t
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="workflows.json",
        layout="array",
        requires=("workflow",),
        count=sql_count("SELECT count(*) FROM workflow WHERE org_id = {org}"),
        pages=sql_pages(
            _WORKFLOWS,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "name": r["name"],
                "description": r["description"],
                "definition": json_value(r["definition"]),
                "agent_id": uid(r["agent_id"]),
                "enabled": r["enabled"],
                "created_by": uid(r["created_by"]),
                "created_at": iso(r["created_at"]),
                "updated_at": iso(r["updated_at"]),
            },
        ),
        description="Workflows with their JSON definitions (agent ids refer to agents.json).",
        record_schema=record(
            id=ID,
            name=STRING,
            description=STRING,
            definition=OBJECT,
            agent_id=ID,
            enabled=BOOLEAN,
            created_by=nullable(ID),
            created_at=TIMESTAMP,
            updated_at=TIMESTAMP,
        ),
    )
)


# -- connections.json ------------------------------------------------------------------------------
# The secret column is never selected: the archive says only whether a secret is set, and when.
_CONNECTIONS = """
SELECT t.id, t.name, t.kind, t.config, t.secret_set_at, t.created_by, t.created_at, t.updated_at
FROM connection t
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="connections.json",
        layout="array",
        requires=("connection",),
        count=sql_count("SELECT count(*) FROM connection WHERE org_id = {org}"),
        pages=sql_pages(
            _CONNECTIONS,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "name": r["name"],
                "kind": r["kind"],
                # A credential left in a config saved before the per-kind allow-list is not exported.
                "config": without_credentials(json_value(r["config"])),
                "secret": REDACTED if r["secret_set_at"] is not None else None,
                "secret_set_at": iso(r["secret_set_at"]),
                "created_by": uid(r["created_by"]),
                "created_at": iso(r["created_at"]),
                "updated_at": iso(r["updated_at"]),
            },
        ),
        description="Connections with their non-secret configuration; secrets are never exported.",
        record_schema=record(
            id=ID,
            name=STRING,
            kind=STRING,
            config=OBJECT,
            secret=nullable(enum(REDACTED)),
            secret_set_at=nullable(TIMESTAMP),
            created_by=nullable(ID),
            created_at=TIMESTAMP,
            updated_at=TIMESTAMP,
        ),
    )
)


# -- invites.json ----------------------------------------------------------------------------------
# Pending invites only; the token hash is never selected.
_PENDING = "t.accepted_at IS NULL AND t.revoked_at IS NULL AND t.superseded_at IS NULL AND t.expires_at > $1"


def _now() -> tuple:
    return (clock.now(),)

_INVITES = f"""
SELECT t.id, t.email, t.role, t.invited_by, u.email AS invited_by_email, t.created_at, t.expires_at
FROM invite t LEFT JOIN app_user u ON u.id = t.invited_by
WHERE t.org_id = {{org}} AND {_PENDING} {{after}}
ORDER BY t.created_at, t.id
LIMIT {{limit}}
"""

register(
    Exporter(
        filename="invites.json",
        layout="array",
        requires=("invite",),
        count=sql_count(f"SELECT count(*) FROM invite t WHERE t.org_id = {{org}} AND {_PENDING}", _now),
        pages=sql_pages(
            _INVITES,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "email": r["email"],
                "role": r["role"],
                "invited_by": uid(r["invited_by"]),
                "invited_by_email": r["invited_by_email"],
                "created_at": iso(r["created_at"]),
                "expires_at": iso(r["expires_at"]),
            },
            _now,
        ),
        description="Pending invites (not accepted, revoked, replaced by a resend, or expired). Tokens are never exported.",
        record_schema=record(
            id=ID,
            email=STRING,
            role=enum(*(r.value for r in Role if r != Role.OWNER)),
            invited_by=nullable(ID),
            invited_by_email=nullable(STRING),
            created_at=TIMESTAMP,
            expires_at=TIMESTAMP,
        ),
    )
)


# -- audit_log.jsonl -------------------------------------------------------------------------------
_AUDIT = """
SELECT t.id, t.created_at, t.actor_id, t.actor_email, t.action, t.target_type, t.target_id, t.target_label,
       t.before, t.after, t.ip
FROM audit_event t
WHERE t.org_id = {org} {after}
ORDER BY t.created_at, t.id
LIMIT {limit}
"""

register(
    Exporter(
        filename="audit_log.jsonl",
        layout="lines",
        requires=("audit_event",),
        count=sql_count("SELECT count(*) FROM audit_event WHERE org_id = {org}"),
        pages=sql_pages(
            _AUDIT,
            BY_CREATED,
            lambda r: {
                "id": uid(r["id"]),
                "created_at": iso(r["created_at"]),
                "actor_id": uid(r["actor_id"]),
                "actor_email": r["actor_email"],
                "action": r["action"],
                "target_type": r["target_type"],
                "target_id": r["target_id"],
                "target_label": r["target_label"],
                "before": in_audit_event(r["action"], json_value(r["before"])),
                "after": in_audit_event(r["action"], json_value(r["after"])),
                "ip": r["ip"],
            },
        ),
        description="The audit log, oldest first, one event per line.",
        record_schema=record(
            id=ID,
            created_at=TIMESTAMP,
            actor_id=nullable(ID),
            actor_email=nullable(STRING),
            action=STRING,
            target_type=nullable(STRING),
            target_id=nullable(STRING),
            target_label=nullable(STRING),
            before=ANY,
            after=ANY,
            ip=nullable(STRING),
        ),
    )
)

__all__ = ["EXPORTERS", "Exporter", "Layout", "exporters", "keyset_pages", "register", "sql_count", "sql_pages"]
