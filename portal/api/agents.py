"""``/api/v1/orgs/{slug}/agents``: the agents resource (``AGENTS``) as JSON (``portal.api.resource``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from portal.api import resource
from portal.api.common import Description, Name
from portal.resources.agents.service import AGENTS, MODEL_RE

Model = Annotated[str, Meta(min_length=1, max_length=100, pattern=MODEL_RE.pattern, description="The model identifier, e.g. claude-sonnet-4-5")]
Status = Literal["active", "paused"]


class Agent(msgspec.Struct):
    id: UUID
    name: str
    description: str
    model: str
    status: Status
    workflows: int  # how many workflows it runs
    created_at: datetime
    updated_at: datetime


class AgentCreate(msgspec.Struct):  # other fields are ignored (an org_id in the body, say)
    name: Name
    model: Model
    description: Description = ""
    status: Status = "active"


class AgentUpdate(msgspec.Struct):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    model: Model | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    status: Status | msgspec.UnsetType = msgspec.UNSET


SPEC = resource.Spec(AGENTS, Agent, AgentCreate, AgentUpdate)
ROUTES = resource.routes(SPEC)
