"""Workflows: a validated JSON definition, run by one agent of the same org, enabled or not."""

from __future__ import annotations

from typing import Any, Mapping
from uuid import UUID

from portal.errors import NotFound
from portal.params import parse_id
from portal import records
from portal.resources import common, layer
from portal.resources.agents.service import agent_choices
from portal.resources.common import FormErrors, JSONProblem
from portal.resources.workflows import definition as definitions
from portal.tenancy.context import OrgContext

_SHAPE = """coalesce(w.definition->'trigger'->>'type', 'manual') AS trigger,
            CASE jsonb_typeof(w.definition->'steps') WHEN 'array' THEN jsonb_array_length(w.definition->'steps') ELSE 0 END AS steps"""


def _definition(form: Mapping[str, str], errors: FormErrors) -> Any:
    try:
        return definitions.validate(str(form.get("definition", "")))
    except JSONProblem as exc:
        errors["definition"] = str(exc)
        return None


def _agent_id(form: Mapping[str, str], errors: FormErrors) -> str | None:
    raw = str(form.get("agent_id", "")).strip()
    if not raw:
        errors["agent_id"] = "Choose the agent that runs this workflow."
        return None
    return str(parse_id(raw))  # not an id at all: 404, like any foreign id


class Workflows(layer.Resource):
    noun, plural, title, title_plural, alias = "workflow", "workflows", "Workflow", "Workflows", "w"
    intro = "A workflow is a sequence of steps one agent carries out, started by hand, on a schedule, by a webhook or by an event."
    columns = f"""w.id, w.name, w.description, w.definition, w.agent_id, w.enabled, w.created_at, w.updated_at,
                  a.name AS agent_name, a.status AS agent_status, {_SHAPE}"""
    list_columns = f"""w.id, w.name, w.description, w.enabled, w.updated_at, w.agent_id,
                       a.name AS agent_name, a.status AS agent_status, {_SHAPE}"""
    joins = "JOIN agent a ON a.org_id = {org} AND a.id = w.agent_id"
    search = ("w.name", "w.description")
    fields = (
        layer.name("workflow"),
        layer.DESCRIPTION,
        layer.flag("enabled"),
        layer.Field("definition", _definition, cast="::jsonb", to_db=common.to_json, of_row=common.load_json),
        layer.Field("agent_id", _agent_id, to_db=UUID, of_row=str),
    )
    export = layer.Export(
        "workflows.json",
        "Workflows with their JSON definitions (agent ids refer to agents.json).",
        layer.export_fields(
            layer.EXPORTED_DESCRIPTION,
            records.Field("definition", records.OBJECT, convert=records.json_value),
            records.uid_field("agent_id"),
            records.Field("enabled", records.BOOLEAN),
        ),
    )
    toggle = layer.Toggle(
        "enabled",
        on=layer.State(True, "true", word="enabled", css="active", leave="Disable"),
        off=layer.State(False, "false", word="disabled", css="paused", leave="Enable"),
    )

    async def check(self, ctx: OrgContext, values: dict[str, Any], errors: FormErrors, current: Any) -> None:
        """The chosen agent must be one of this org's, and is locked against deletion until the
        transaction ends. An id that is not one of this org's agents is answered like any other
        foreign id: 404."""
        if values.get("agent_id") is None:
            return
        row = await ctx.scope.fetchrow(
            "SELECT a.id FROM agent a WHERE a.org_id = {org} AND a.id = $1 FOR KEY SHARE", UUID(values["agent_id"])
        )
        if row is None:
            raise NotFound()

    def delete_consequence(self, row: Any) -> str:
        return "Its definition is removed and it stops running. The audit log keeps a record of it."

    def form_defaults(self, query: Mapping[str, str]) -> dict[str, Any]:
        return {"enabled": "1", "definition": definitions.EXAMPLE, "agent_id": query.get("agent", "")[:64]}

    def form_of(self, row: Any) -> dict[str, Any]:
        return {
            "name": row["name"],
            "description": row["description"],
            "agent_id": str(row["agent_id"]),
            "enabled": "1" if row["enabled"] else "",
            "definition": common.pretty_json(row["definition"]),
        }

    async def form_context(self, ctx: OrgContext, form: dict[str, Any], row: Any) -> dict[str, Any]:
        agents = await agent_choices(ctx.scope, current=row["agent_id"] if row else None)
        return {"agents": agents, "definition_help": definitions, "form_blocked": not agents}

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {"definition_json": common.pretty_json(row["definition"])}


WORKFLOWS = Workflows()
