"""Agents: the AI workers an organization runs. Name, description, model, active or paused."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

import asyncpg

from portal import clock, records
from portal.resources import common, layer
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext
from portal.tenancy.scope import TenantScope

STATUSES = ("active", "paused")
# Suggestions for the model field; any well-formed model identifier is accepted.
SUGGESTED_MODELS = (
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gemini-2.5-pro",
    "llama-3.3-70b-instruct",
    "mistral-large-latest",
)
MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")
MODEL_HELP = "Use the model's identifier: letters, digits and . _ : / @ + - (no spaces)."
STATUS_HELP = "Choose active or paused."


def _model(form: Mapping[str, str], errors: FormErrors) -> str:
    value = common.text(form, "model", errors, label="model", max_len=100)
    if "model" not in errors and value and not MODEL_RE.match(value):
        errors["model"] = MODEL_HELP
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class Agents(layer.Resource):
    noun, plural, title, title_plural, alias = "agent", "agents", "Agent", "Agents", "a"
    intro = "Agents are the AI workers of your organization: each runs one model, and workflows put them to work."
    search_hint = "Name, model or description"
    columns = """a.id, a.name, a.description, a.model, a.status, a.created_at, a.updated_at,
                 (SELECT count(*) FROM workflow w WHERE w.org_id = {org} AND w.agent_id = a.id) AS workflows"""
    search = ("a.name", "a.model", "a.description")
    fields = (
        layer.name("agent"),
        layer.DESCRIPTION,
        layer.Field("model", _model),
        layer.choice("status", STATUSES, STATUS_HELP, default="active"),
    )
    toggle = layer.Toggle(
        "status",
        on=layer.State("active", "active", word="active", css="active", leave="Pause"),
        off=layer.State("paused", "paused", word="paused", css="paused", leave="Resume"),
    )
    export = layer.Export(
        "agents.json",
        "AI agents.",
        layer.export_fields(
            layer.EXPORTED_DESCRIPTION,
            records.Field("model", records.STRING),
            records.Field("status", records.enum(*STATUSES)),
        ),
    )
    in_use_meanwhile = "“{name}” is now used by a workflow. Move it to another agent first."

    def in_use(self, row: Any) -> str | None:
        used = row["workflows"]
        if not used:
            return None
        return f"“{row['name']}” runs {_plural(used, 'workflow')}. Move those workflows to another agent or delete them first."

    def delete_blocker(self, row: Any) -> str | None:
        used = row["workflows"]
        return f"This agent runs {_plural(used, 'workflow')}. Move them to another agent or delete them first." if used else None

    def delete_consequence(self, row: Any) -> str:
        return "Its settings are removed. The audit log keeps a record of it."

    def form_defaults(self, query: Mapping[str, str]) -> dict[str, Any]:
        return {"status": "active"}

    async def form_context(self, ctx: OrgContext, form: dict[str, Any], row: Any) -> dict[str, Any]:
        return {"models": SUGGESTED_MODELS}

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        workflows = await ctx.scope.fetch(
            """SELECT w.id, w.name, w.enabled FROM workflow w
               WHERE w.org_id = {org} AND w.agent_id = $1 ORDER BY lower(w.name), w.id LIMIT 20""",
            row["id"],
        )
        tokens = await agent_tokens(ctx, row["id"]) if ctx.can(self.manage_permission) else None
        return {"workflows": workflows, "tokens": tokens, "max_days": TOKEN_MAX_DAYS, "default_days": TOKEN_DEFAULT_DAYS}


AGENTS = Agents()

# -- the agent's own tokens (issued and revoked in ``portal.api.tokens``) --------------------------
TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS = 90, 365
AGENT_TOKENS = """SELECT t.id, t.name, t.prefix, t.created_by_email, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
                  FROM api_token t WHERE t.org_id = {org} AND t.role = 'agent' AND t.agent_id = $1"""
TOKENS_SHOWN = 200


def token_state(row: Any, now: datetime) -> str:
    return "revoked" if row["revoked_at"] else "expired" if row["expires_at"] <= now else "active"


async def agent_tokens(ctx: OrgContext, agent_id: Any) -> list[dict]:
    """The agent's tokens, live ones first, newest first."""
    now = clock.now()
    rows = await ctx.scope.fetch(
        AGENT_TOKENS + " ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC, t.id DESC LIMIT $2", agent_id, TOKENS_SHOWN
    )
    return [{**row, "state": token_state(row, now)} for row in rows]


async def agent_choices(scope: TenantScope, *, current: Any = None, limit: int = 500) -> list[asyncpg.Record]:
    """Agents to pick from (the workflow form): the first ``limit`` by name, and always the
    workflow's current agent."""
    rows = await scope.fetch(
        """SELECT a.id, a.name, a.status FROM agent a WHERE a.org_id = {org}
           ORDER BY a.id = $2 DESC, lower(a.name) LIMIT $1""",
        limit,
        current,
    )
    return sorted(rows, key=lambda r: r["name"].lower())
