"""Connections: how agents reach other systems. A kind from a fixed list, non-secret JSON config,
and a write-only secret kept encrypted (``portal.resources.crypto``).

The secret is never selected for display, never rendered back (not even into a form that failed
validation), never logged and never written to the audit log: pages show only whether it is set.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Mapping
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.audit.actions import Action
from portal.audit.redact import without_credentials
from portal.errors import Invalid
from portal.params import like_pattern
from portal import records
from portal.resources import common, crypto, layer
from portal.resources.common import FormErrors, JSONProblem
from portal.resources.connections import kinds
from portal.resources.connections.kinds import KINDS
from portal.tenancy.context import OrgContext

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


def shown_config(stored: Any) -> Any:
    """The config as pages show it to every member: a credential left in an old config is hidden."""
    return without_credentials(common.load_json(stored))


def _kind(form: Mapping[str, str], errors: FormErrors) -> str:
    value = str(form.get("kind", "")).strip()
    if value not in KINDS:
        errors["kind"] = "Choose one of the listed kinds." if value else "Choose what this connection connects to."
    return value


def _config(form: Mapping[str, str], errors: FormErrors) -> str:
    """The JSON as typed; ``Connections.check`` parses it and checks it against the kind's keys
    (on an edit, the stored kind)."""
    return str(form.get("config", "")).strip() or "{}"


def secret_of(form: Mapping[str, str], errors: FormErrors, *, required: bool) -> str | None:
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


class Connections(layer.Resource):
    noun, plural, title, title_plural, alias = "connection", "connections", "Connection", "Connections", "c"
    intro = (
        "Connections let agents reach model providers and your own systems. "
        "Their secrets are stored encrypted and can be replaced, never read back."
    )
    search_hint = "Name or kind"
    # The secret column is never selected: pages know only whether a secret is set, and since when.
    columns = "c.id, c.name, c.kind, c.config, c.secret_set_at, c.created_at, c.updated_at"
    list_columns = "c.id, c.name, c.kind, c.secret_set_at, c.updated_at"
    fields = (
        layer.name("connection"),
        layer.Field("kind", _kind, on_create_only=True),
        layer.Field("config", _config, cast="::jsonb", to_db=common.to_json, of_row=shown_config),
    )
    export = layer.Export(
        "connections.json",
        "Connections with their non-secret configuration; secrets are never exported.",
        layer.export_fields(
            records.Field("kind", records.STRING),
            # A credential left in a config saved before the per-kind allow-list is not exported.
            records.Field("config", records.OBJECT, convert=lambda raw: without_credentials(records.json_value(raw))),
            # The secret column is never selected: the archive says only whether one is set, and when.
            records.Field(
                "secret", records.nullable(records.enum(records.REDACTED)), "t.secret_set_at IS NOT NULL",
                convert=lambda is_set: records.REDACTED if is_set else None,
            ),
            records.iso_field("secret_set_at", records.nullable(records.TIMESTAMP)),
        ),
    )
    form_autocomplete_off = True
    form_fragment, form_fragment_target = "config_keys", "config-keys"
    sections = (("secret", "secret-section"),)

    def match(self, q: str) -> tuple[str, list]:
        """By name, or by a kind whose label contains ``q``."""
        matching = [key for key, kind in KINDS.items() if q.lower() in kind.label.lower()]
        return "(c.name ILIKE $1 OR c.kind = ANY($2::text[]))", [like_pattern(q), matching]

    async def check(self, ctx: OrgContext, values: dict[str, Any], errors: FormErrors, current: Any) -> None:
        kind = current["kind"] if current is not None else values["kind"]
        chosen = KINDS.get(kind)
        example = json.dumps(chosen.example if chosen else {"region": "eu-west-1"}, ensure_ascii=False)
        try:
            values["config"] = common.parse_json_object(
                values["config"], max_chars=CONFIG_MAX_CHARS, max_depth=CONFIG_MAX_DEPTH, example=example
            )
        except JSONProblem as exc:
            errors["config"] = str(exc)
            return
        if problem := config_problem(kind, values["config"]):
            errors["config"] = problem

    def audited_on_delete(self, row: Any) -> dict[str, Any]:
        return {**self.audited(row), "secret_set": row["secret_set_at"] is not None}

    async def create(self, ctx: OrgContext, form: Mapping[str, str]) -> UUID:
        errors = FormErrors()
        try:
            values = await self.validate(ctx, form)
        except Invalid as exc:
            errors.update(exc.field_errors)
            values = {}
        secret = secret_of(form, errors, required=False)
        errors.raise_if_any()
        connection_id = uuid.uuid4()  # known before the insert: the ciphertext is bound to it
        ciphertext = crypto.encrypt(secret, org_id=ctx.org.id, connection_id=connection_id) if secret else None
        extra = {"id": connection_id, "secret_ciphertext": ciphertext, "secret_set_at": layer.SQL("now()") if ciphertext else None}
        await self.insert(ctx, values, extra=extra)
        await audit.record(
            ctx, Action.CONNECTION_CREATED, target=("connection", connection_id, values["name"]),
            after={**values, "secret_set": ciphertext is not None},
        )
        return connection_id

    def delete_question(self, row: Any) -> str:
        return f"Delete the connection “{row['name']}” and its secret? This can't be undone."

    def delete_consequence(self, row: Any) -> str:
        return "Its configuration and its stored secret are destroyed; agents can no longer use it."

    def form_defaults(self, query: Mapping[str, str]) -> dict[str, Any]:
        kind = query.get("kind")
        return {"config": "{}", "kind": kind if kind in KINDS else ""}

    def form_of(self, row: Any) -> dict[str, Any]:
        """A credential left in an old config is shown hidden (and refused if sent back), never in
        the clear — members who may edit are not all who may see secrets."""
        return {"name": row["name"], "kind": row["kind"], "config": common.pretty_json(shown_config(row["config"]))}

    def shown_form(self, form: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in form.items() if k != "secret"}

    def resubmitted(self, form: dict[str, Any], row: Any) -> dict[str, Any]:
        return {**form, "kind": row["kind"]}

    def list_context(self) -> dict[str, Any]:
        return {"kind_label": kind_label}

    async def form_context(self, ctx: OrgContext, form: dict[str, Any], row: Any) -> dict[str, Any]:
        kind = row["kind"] if row else form.get("kind")
        return {
            "kinds": KINDS,
            "examples": {k: common.pretty_json(v.example) for k, v in KINDS.items()},
            "chosen": kind if kind in KINDS else None,
        }

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {
            "kind": KINDS.get(row["kind"]),
            "config_json": common.pretty_json(shown_config(row["config"])),
            "config_problem": stored_config_problem(row),
        }


CONNECTIONS = Connections()


async def replace_secret(ctx: OrgContext, connection_id: UUID, form: Mapping[str, str]) -> asyncpg.Record:
    """Replace (or, with ``action=clear``, remove) the secret; return the connection as shown."""
    current = await CONNECTIONS.get(ctx.scope, connection_id, lock=True)
    if form.get("action") == "clear":
        if current["secret_set_at"] is None:
            return current
        await ctx.scope.execute(
            """UPDATE connection SET secret_ciphertext = NULL, secret_set_at = NULL, updated_at = now()
               WHERE org_id = {org} AND id = $1""",
            connection_id,
        )
        await audit.record(ctx, Action.CONNECTION_SECRET_CLEARED, target=("connection", connection_id, current["name"]))
        return await CONNECTIONS.get(ctx.scope, connection_id)
    errors = FormErrors()
    secret = secret_of(form, errors, required=True)
    errors.raise_if_any()
    assert secret is not None
    ciphertext = crypto.encrypt(secret, org_id=ctx.org.id, connection_id=connection_id)
    await ctx.scope.execute(
        """UPDATE connection SET secret_ciphertext = $2, secret_set_at = now(), updated_at = now()
           WHERE org_id = {org} AND id = $1""",
        connection_id, ciphertext,
    )
    await audit.record(
        ctx, Action.CONNECTION_SECRET_REPLACED, target=("connection", connection_id, current["name"]),
        before={"secret_set": current["secret_set_at"] is not None}, after={"secret_set": True},
    )
    return await CONNECTIONS.get(ctx.scope, connection_id)
