"""Workflows: a validated JSON definition, run by one agent of the same org, enabled or not."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.errors import Invalid, NotFound
from portal.resources import common
from portal.resources.common import FormErrors, JSONProblem
from portal.resources.workflows import definition as definitions
from portal.tenancy.context import OrgContext

TAKEN = "Another workflow in this organization already has this name."

_ONE = """SELECT w.id, w.name, w.description, w.definition, w.agent_id, w.enabled, w.created_at, w.updated_at,
                 a.name AS agent_name, a.status AS agent_status,
                 coalesce(w.definition->'trigger'->>'type', 'manual') AS trigger,
                 CASE jsonb_typeof(w.definition->'steps') WHEN 'array' THEN jsonb_array_length(w.definition->'steps') ELSE 0 END AS steps
          FROM workflow w JOIN agent a ON a.org_id = w.org_id AND a.id = w.agent_id
          WHERE w.org_id = {org} AND w.id = $1"""


def _public(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "agent_id": str(row["agent_id"]),
        "enabled": row["enabled"],
        "definition": common.load_json(row["definition"]),
    }


async def list_workflows(ctx: OrgContext, q: str, page: int) -> dict[str, Any]:
    pattern = common.like_pattern(q) if q else None
    total = await ctx.scope.fetchval(
        """SELECT count(*) FROM workflow w WHERE w.org_id = {org}
           AND ($1::text IS NULL OR w.name ILIKE $1 OR w.description ILIKE $1)""",
        pattern,
    )
    pager = common.pager(total, page)
    rows = await ctx.scope.fetch(
        """SELECT w.id, w.name, w.description, w.enabled, w.updated_at, w.agent_id,
                  a.name AS agent_name, a.status AS agent_status,
                  coalesce(w.definition->'trigger'->>'type', 'manual') AS trigger,
                  CASE jsonb_typeof(w.definition->'steps') WHEN 'array' THEN jsonb_array_length(w.definition->'steps') ELSE 0 END AS steps
           FROM workflow w JOIN agent a ON a.org_id = w.org_id AND a.id = w.agent_id
           WHERE w.org_id = {org}
           AND ($1::text IS NULL OR w.name ILIKE $1 OR w.description ILIKE $1)
           ORDER BY lower(w.name) LIMIT $2 OFFSET $3""",
        pattern,
        pager.size,
        pager.offset,
    )
    return {"workflows": rows, "pager": pager, "q": q}


async def get_workflow(ctx: OrgContext, workflow_id: UUID, *, lock: bool = False) -> asyncpg.Record:
    row = await ctx.scope.fetchrow(_ONE + (" FOR UPDATE OF w" if lock else ""), workflow_id)
    if row is None:
        raise NotFound()
    return row


def form_of(row: Any) -> dict[str, str]:
    """The edit form's initial values."""
    return {
        "name": row["name"],
        "description": row["description"],
        "agent_id": str(row["agent_id"]),
        "enabled": "1" if row["enabled"] else "",
        "definition": common.pretty_json(row["definition"]),
    }


async def _agent(ctx: OrgContext, raw: str) -> asyncpg.Record:
    """The chosen agent, locked against deletion until this transaction ends.

    An id that is not one of this org's agents is answered like any other foreign id: 404.
    """
    row = await ctx.scope.fetchrow(
        "SELECT a.id, a.name FROM agent a WHERE a.org_id = {org} AND a.id = $1 FOR KEY SHARE", common.parse_id(raw)
    )
    if row is None:
        raise NotFound()
    return row


async def validate(ctx: OrgContext, form: dict[str, str]) -> dict[str, Any]:
    errors = FormErrors()
    values: dict[str, Any] = {
        "name": common.name_field(form, errors, noun="workflow"),
        "description": common.description_field(form, errors),
        "enabled": form.get("enabled", "") in ("1", "on", "true"),
    }
    try:
        values["definition"] = definitions.validate(str(form.get("definition", "")))
    except JSONProblem as exc:
        errors["definition"] = str(exc)
    raw_agent = str(form.get("agent_id", "")).strip()
    if not raw_agent:
        errors["agent_id"] = "Choose the agent that runs this workflow."
    else:
        values["agent_id"] = str((await _agent(ctx, raw_agent))["id"])
    errors.raise_if_any()
    return values


async def create_workflow(ctx: OrgContext, form: dict[str, str]) -> UUID:
    values = await validate(ctx, form)
    async with common.unique_name(TAKEN):
        workflow_id = await ctx.scope.fetchval(
            """INSERT INTO workflow (org_id, name, description, definition, agent_id, enabled, created_by)
               VALUES ({org}, $1, $2, $3::jsonb, $4, $5, $6) RETURNING id""",
            values["name"], values["description"], common.to_json(values["definition"]),
            UUID(values["agent_id"]), values["enabled"], ctx.user_id,
        )
    await audit.record(ctx, "workflow.created", target=("workflow", workflow_id, values["name"]), after=values)
    return workflow_id


async def _apply(ctx: OrgContext, current: asyncpg.Record, values: dict[str, Any]) -> bool:
    before, after = common.changes(_public(current), values)
    if not after:
        return False
    async with common.unique_name(TAKEN):
        await ctx.scope.execute(
            """UPDATE workflow SET name = $2, description = $3, definition = $4::jsonb, agent_id = $5, enabled = $6,
                      updated_at = now()
               WHERE org_id = {org} AND id = $1""",
            current["id"], values["name"], values["description"], common.to_json(values["definition"]),
            UUID(values["agent_id"]), values["enabled"],
        )
    await audit.record(ctx, "workflow.updated", target=("workflow", current["id"], values["name"]), before=before, after=after)
    return True


async def update_workflow(ctx: OrgContext, workflow_id: UUID, form: dict[str, str]) -> bool:
    current = await get_workflow(ctx, workflow_id, lock=True)
    return await _apply(ctx, current, await validate(ctx, form))


async def set_enabled(ctx: OrgContext, workflow_id: UUID, raw: str) -> asyncpg.Record:
    current = await get_workflow(ctx, workflow_id, lock=True)
    if raw not in ("true", "false"):
        raise Invalid("Choose enabled or disabled.", field_errors={"enabled": "Choose enabled or disabled."})
    await _apply(ctx, current, {**_public(current), "enabled": raw == "true"})
    return await get_workflow(ctx, workflow_id)


async def delete_workflow(ctx: OrgContext, workflow_id: UUID) -> str:
    current = await get_workflow(ctx, workflow_id, lock=True)
    await ctx.scope.execute("DELETE FROM workflow WHERE org_id = {org} AND id = $1", workflow_id)
    await audit.record(ctx, "workflow.deleted", target=("workflow", workflow_id, current["name"]), before=_public(current))
    return current["name"]
