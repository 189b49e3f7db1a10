"""Agents: the AI workers an organization runs. Name, description, model, active or paused."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.errors import Conflict, Invalid, NotFound
from portal.resources import common
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext

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
TAKEN = "Another agent in this organization already has this name."

_ONE = """SELECT a.id, a.name, a.description, a.model, a.status, a.created_at, a.updated_at,
                 (SELECT count(*) FROM workflow w WHERE w.org_id = {org} AND w.agent_id = a.id) AS workflows
          FROM agent a WHERE a.org_id = {org} AND a.id = $1"""


def _public(row: Any) -> dict[str, Any]:
    """The audited view of an agent."""
    return {"name": row["name"], "description": row["description"], "model": row["model"], "status": row["status"]}


async def list_agents(ctx: OrgContext, q: str, page: int) -> dict[str, Any]:
    """One page of agents matching ``q``, with how many workflows each runs: two statements."""
    pattern = common.like_pattern(q) if q else None
    total = await ctx.scope.fetchval(
        """SELECT count(*) FROM agent a WHERE a.org_id = {org}
           AND ($1::text IS NULL OR a.name ILIKE $1 OR a.model ILIKE $1 OR a.description ILIKE $1)""",
        pattern,
    )
    pager = common.pager(total, page)
    rows = await ctx.scope.fetch(
        """SELECT a.id, a.name, a.description, a.model, a.status, a.created_at, a.updated_at,
                  (SELECT count(*) FROM workflow w WHERE w.org_id = {org} AND w.agent_id = a.id) AS workflows
           FROM agent a WHERE a.org_id = {org}
           AND ($1::text IS NULL OR a.name ILIKE $1 OR a.model ILIKE $1 OR a.description ILIKE $1)
           ORDER BY lower(a.name) LIMIT $2 OFFSET $3""",
        pattern,
        pager.size,
        pager.offset,
    )
    return {"agents": rows, "pager": pager, "q": q}


async def get_agent(ctx: OrgContext, agent_id: UUID, *, lock: bool = False) -> asyncpg.Record:
    row = await ctx.scope.fetchrow(_ONE + (" FOR UPDATE" if lock else ""), agent_id)
    if row is None:
        raise NotFound()
    return row


async def agent_detail(ctx: OrgContext, agent_id: UUID) -> dict[str, Any]:
    agent = await get_agent(ctx, agent_id)
    workflows = await ctx.scope.fetch(
        """SELECT w.id, w.name, w.enabled FROM workflow w
           WHERE w.org_id = {org} AND w.agent_id = $1 ORDER BY lower(w.name), w.id LIMIT 20""",
        agent_id,
    )
    return {"agent": agent, "workflows": workflows}


async def agent_choices(ctx: OrgContext, *, current: UUID | None = None, limit: int = 500) -> list[asyncpg.Record]:
    """Agents to pick from (the workflow form): the first ``limit`` by name, and always the
    workflow's current agent."""
    rows = await ctx.scope.fetch(
        """SELECT a.id, a.name, a.status FROM agent a WHERE a.org_id = {org}
           ORDER BY a.id = $2 DESC, lower(a.name) LIMIT $1""",
        limit,
        current,
    )
    return sorted(rows, key=lambda r: r["name"].lower())


def validate(form: dict[str, str]) -> dict[str, str]:
    errors = FormErrors()
    values = {
        "name": common.name_field(form, errors, noun="agent"),
        "description": common.description_field(form, errors),
        "model": common.text(form, "model", errors, label="model", max_len=100),
        "status": str(form.get("status", "active")).strip() or "active",
    }
    if "model" not in errors and values["model"] and not MODEL_RE.match(values["model"]):
        errors["model"] = "Use the model's identifier: letters, digits and . _ : / @ + - (no spaces)."
    if values["status"] not in STATUSES:
        errors["status"] = "Choose active or paused."
    errors.raise_if_any()
    return values


async def create_agent(ctx: OrgContext, form: dict[str, str]) -> UUID:
    values = validate(form)
    async with common.unique_name(TAKEN):
        agent_id = await ctx.scope.fetchval(
            """INSERT INTO agent (org_id, name, description, model, status, created_by)
               VALUES ({org}, $1, $2, $3, $4, $5) RETURNING id""",
            values["name"], values["description"], values["model"], values["status"], ctx.user_id,
        )
    await audit.record(ctx, "agent.created", target=("agent", agent_id, values["name"]), after=values)
    return agent_id


async def _apply(ctx: OrgContext, current: asyncpg.Record, values: dict[str, str]) -> bool:
    before, after = common.changes(_public(current), values)
    if not after:
        return False
    async with common.unique_name(TAKEN):
        await ctx.scope.execute(
            """UPDATE agent SET name = $2, description = $3, model = $4, status = $5, updated_at = now()
               WHERE org_id = {org} AND id = $1""",
            current["id"], values["name"], values["description"], values["model"], values["status"],
        )
    await audit.record(ctx, "agent.updated", target=("agent", current["id"], values["name"]), before=before, after=after)
    return True


async def update_agent(ctx: OrgContext, agent_id: UUID, form: dict[str, str]) -> bool:
    """Save the edit form; False if nothing changed."""
    current = await get_agent(ctx, agent_id, lock=True)
    return await _apply(ctx, current, validate(form))


async def set_status(ctx: OrgContext, agent_id: UUID, status: str) -> asyncpg.Record:
    current = await get_agent(ctx, agent_id, lock=True)
    if status not in STATUSES:
        raise Invalid("Choose active or paused.", field_errors={"status": "Choose active or paused."})
    await _apply(ctx, current, {**_public(current), "status": status})
    return await get_agent(ctx, agent_id)


async def delete_agent(ctx: OrgContext, agent_id: UUID) -> str:
    """Delete an agent that runs no workflow; return its name."""
    current = await get_agent(ctx, agent_id, lock=True)
    in_use = current["workflows"]
    if in_use:
        raise Conflict(
            f"“{current['name']}” runs {in_use} workflow{'s' if in_use != 1 else ''}. "
            "Move those workflows to another agent or delete them first."
        )
    try:
        async with common.savepoint():
            await ctx.scope.execute("DELETE FROM agent WHERE org_id = {org} AND id = $1", agent_id)
    except asyncpg.ForeignKeyViolationError:  # a workflow was attached in the meantime
        raise Conflict(f"“{current['name']}” is now used by a workflow. Move it to another agent first.") from None
    await audit.record(ctx, "agent.deleted", target=("agent", agent_id, current["name"]), before=_public(current))
    return current["name"]
