"""``/api/v1/orgs/{slug}/workflows``: the workflows resource (``WORKFLOWS``) as JSON. The
definition is a JSON object, validated as the form's (``portal.resources.workflows.definition``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from portal.api import resource
from portal.api.common import Description, JSONObject, Name
from portal.resources.common import load_json
from portal.resources.workflows.service import WORKFLOWS


class Workflow(msgspec.Struct):
    id: UUID
    name: str
    description: str
    agent_id: UUID  # the agent that runs it
    agent_name: str
    enabled: bool
    definition: JSONObject  # trigger, inputs, steps, timeout_seconds
    trigger: str
    steps: int
    created_at: datetime
    updated_at: datetime


class WorkflowCreate(msgspec.Struct):
    name: Name
    agent_id: UUID
    definition: JSONObject
    description: Description = ""
    enabled: bool = True


class WorkflowUpdate(msgspec.Struct):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    agent_id: UUID | msgspec.UnsetType = msgspec.UNSET
    definition: JSONObject | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


def workflow(row: Any) -> Workflow:
    """A workflow row; a list row has no definition (it is read on the workflow's own URL)."""
    return Workflow(
        id=row["id"], name=row["name"], description=row["description"], agent_id=row["agent_id"], agent_name=row["agent_name"],
        enabled=row["enabled"], definition=load_json(row["definition"]), trigger=row["trigger"], steps=row["steps"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


SPEC = resource.Spec(WORKFLOWS, Workflow, WorkflowCreate, WorkflowUpdate, to_item=workflow)
ROUTES = resource.routes(SPEC)
