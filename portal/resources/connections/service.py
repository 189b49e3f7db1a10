"""Connections: how agents reach other systems. A kind from a fixed list, non-secret JSON config,
and a write-only secret kept encrypted (``portal.resources.crypto``).

The secret is never selected for display, never rendered back (not even into a form that failed
validation), never logged and never written to the audit log: pages show only whether it is set.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.errors import NotFound
from portal.resources import common, crypto
from portal.resources.common import FormErrors, JSONProblem
from portal.resources.connections import kinds
from portal.resources.connections.kinds import KINDS
from portal.tenancy.context import OrgContext

TAKEN = "Another connection in this organization already has this name."
CONFIG_MAX_CHARS = 4_000
CONFIG_MAX_DEPTH = 6
SECRET_MAX = 4_096


def kind_label(kind: str) -> str:
    return KINDS[kind].label if kind in KINDS else kind


def config_problem(kind: str, config: Any) -> str | None:
    """What is wrong with a config for ``kind``: the allow-list of its keys and their types
    (``kinds``); for an unknown kind, at least the credential hint."""
    if kind in KINDS:
        return kinds.config_problem(KINDS[kind], config)
    return kinds.credential_problem(config)


def stored_config_problem(row: Any) -> str | None:
    """For a config saved before its kind declared its keys: the detail page says what to fix."""
    config = common.load_json(row["config"])
    return config_problem(row["kind"], config) if isinstance(config, dict) else None


def shown_config(row: Any) -> Any:
    """The config as pages show it to every member: a credential left in an old config is hidden."""
    return kinds.without_credentials(common.load_json(row["config"]))


def _public(row: Any) -> dict[str, Any]:
    """The connection as audit events record it: never a credential left in an old config."""
    return {"name": row["name"], "kind": row["kind"], "config": shown_config(row)}


_ONE = """SELECT c.id, c.name, c.kind, c.config, c.secret_set_at, c.created_at, c.updated_at
          FROM connection c WHERE c.org_id = {org} AND c.id = $1"""


async def list_connections(ctx: OrgContext, q: str, page: int) -> dict[str, Any]:
    pattern = common.like_pattern(q) if q else None
    matching = [k for k, v in KINDS.items() if q and q.lower() in v.label.lower()]
    total = await ctx.scope.fetchval(
        """SELECT count(*) FROM connection c WHERE c.org_id = {org}
           AND ($1::text IS NULL OR c.name ILIKE $1 OR c.kind = ANY($2::text[]))""",
        pattern,
        matching,
    )
    pager = common.pager(total, page)
    rows = await ctx.scope.fetch(
        """SELECT c.id, c.name, c.kind, c.secret_set_at, c.updated_at FROM connection c WHERE c.org_id = {org}
           AND ($1::text IS NULL OR c.name ILIKE $1 OR c.kind = ANY($2::text[]))
           ORDER BY lower(c.name) LIMIT $3 OFFSET $4""",
        pattern,
        matching,
        pager.size,
        pager.offset,
    )
    return {"connections": rows, "pager": pager, "q": q}


async def get_connection(ctx: OrgContext, connection_id: UUID, *, lock: bool = False) -> asyncpg.Record:
    row = await ctx.scope.fetchrow(_ONE + (" FOR UPDATE" if lock else ""), connection_id)
    if row is None:
        raise NotFound()
    return row


def form_of(row: Any) -> dict[str, str]:
    """The edit form's values: a credential left in an old config is shown hidden (and refused
    if sent back), never in the clear — members who may edit are not all who may see secrets."""
    return {"name": row["name"], "kind": row["kind"], "config": common.pretty_json(shown_config(row))}


def _secret(form: dict[str, str], errors: FormErrors, *, required: bool) -> str | None:
    # Not stripped: a secret is exactly what was typed (only a trailing newline from pasting goes).
    value = str(form.get("secret", "")).rstrip("\r\n")
    if not value.strip():
        if required:
            errors["secret"] = "Enter the new secret."
        return None
    if len(value) > SECRET_MAX:
        errors["secret"] = f"A secret can have at most {SECRET_MAX:,} characters."
    elif "\x00" in value:
        errors["secret"] = "The secret can't contain the character \\u0000."
    return value


def validate(form: dict[str, str], *, kind: str | None = None) -> tuple[dict[str, Any], str | None]:
    """(values, secret) from the form. ``kind`` is given when editing: it cannot change."""
    errors = FormErrors()
    values: dict[str, Any] = {"name": common.name_field(form, errors, noun="connection")}
    values["kind"] = kind or str(form.get("kind", "")).strip()
    if values["kind"] not in KINDS:
        errors["kind"] = "Choose one of the listed kinds." if values["kind"] else "Choose what this connection connects to."
    raw = str(form.get("config", "")).strip() or "{}"
    chosen = KINDS.get(values["kind"])
    example = json.dumps(chosen.example if chosen else {"region": "eu-west-1"}, ensure_ascii=False)
    try:
        values["config"] = common.parse_json_object(raw, max_chars=CONFIG_MAX_CHARS, max_depth=CONFIG_MAX_DEPTH, example=example)
        if problem := config_problem(values["kind"], values["config"]):
            errors["config"] = problem
    except JSONProblem as exc:
        errors["config"] = str(exc)
    secret = _secret(form, errors, required=False) if kind is None else None
    errors.raise_if_any()
    return values, secret


async def create_connection(ctx: OrgContext, form: dict[str, str]) -> UUID:
    values, secret = validate(form)
    connection_id = uuid.uuid4()  # known before the insert: the ciphertext is bound to it
    ciphertext = crypto.encrypt(secret, org_id=ctx.org.id, connection_id=connection_id) if secret else None
    async with common.unique_name(TAKEN):
        await ctx.scope.execute(
            """INSERT INTO connection (id, org_id, name, kind, config, secret_ciphertext, secret_set_at, created_by)
               VALUES ($1, {org}, $2, $3, $4::jsonb, $5, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $6)""",
            connection_id, values["name"], values["kind"], common.to_json(values["config"]), ciphertext, ctx.user_id,
        )
    await audit.record(
        ctx, "connection.created", target=("connection", connection_id, values["name"]),
        after={**values, "secret_set": ciphertext is not None},
    )
    return connection_id


async def update_connection(ctx: OrgContext, connection_id: UUID, form: dict[str, str]) -> bool:
    current = await get_connection(ctx, connection_id, lock=True)
    values, _ = validate(form, kind=current["kind"])
    before, after = common.changes(_public(current), values)
    if not after:
        return False
    async with common.unique_name(TAKEN):
        await ctx.scope.execute(
            "UPDATE connection SET name = $2, config = $3::jsonb, updated_at = now() WHERE org_id = {org} AND id = $1",
            connection_id, values["name"], common.to_json(values["config"]),
        )
    await audit.record(ctx, "connection.updated", target=("connection", connection_id, values["name"]), before=before, after=after)
    return True


async def replace_secret(ctx: OrgContext, connection_id: UUID, form: dict[str, str]) -> asyncpg.Record:
    """Replace (or, with ``action=clear``, remove) the secret; return the connection as shown."""
    current = await get_connection(ctx, connection_id, lock=True)
    if form.get("action") == "clear":
        if current["secret_set_at"] is None:
            return current
        await ctx.scope.execute(
            """UPDATE connection SET secret_ciphertext = NULL, secret_set_at = NULL, updated_at = now()
               WHERE org_id = {org} AND id = $1""",
            connection_id,
        )
        await audit.record(ctx, "connection.secret_cleared", target=("connection", connection_id, current["name"]))
        return await get_connection(ctx, connection_id)
    errors = FormErrors()
    secret = _secret(form, errors, required=True)
    errors.raise_if_any()
    assert secret is not None
    ciphertext = crypto.encrypt(secret, org_id=ctx.org.id, connection_id=connection_id)
    await ctx.scope.execute(
        """UPDATE connection SET secret_ciphertext = $2, secret_set_at = now(), updated_at = now()
           WHERE org_id = {org} AND id = $1""",
        connection_id, ciphertext,
    )
    await audit.record(
        ctx, "connection.secret_replaced", target=("connection", connection_id, current["name"]),
        before={"secret_set": current["secret_set_at"] is not None}, after={"secret_set": True},
    )
    return await get_connection(ctx, connection_id)


async def delete_connection(ctx: OrgContext, connection_id: UUID) -> str:
    current = await get_connection(ctx, connection_id, lock=True)
    await ctx.scope.execute("DELETE FROM connection WHERE org_id = {org} AND id = $1", connection_id)
    await audit.record(
        ctx, "connection.deleted", target=("connection", connection_id, current["name"]),
        before={**_public(current), "secret_set": current["secret_set_at"] is not None},
    )
    return current["name"]
