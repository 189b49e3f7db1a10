"""``/api/v1/orgs/{slug}/teams``: the teams resource (``TEAMS``) as JSON, and a team's members
(``…/teams/{id}/members``: list, add one by membership id, remove one)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from portal.api import limits, resource
from portal.api.resource import IdempotencyKey
from portal.api.common import Description, Name
from portal.params import parse_id
from portal.resources.teams.service import TEAMS, add_member, members_of, remove_member
from portal.tenancy.context import OrgContext
from portal.web.problems import documented


class Team(msgspec.Struct):
    id: UUID
    name: str
    description: str
    members: int  # how many members it has
    created_at: datetime
    updated_at: datetime


class TeamCreate(msgspec.Struct):
    name: Name
    description: Description = ""


class TeamUpdate(msgspec.Struct):
    """Only the fields given change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET


class TeamMember(msgspec.Struct):
    membership_id: UUID  # the member's id in /members
    name: str
    email: str
    added_at: datetime


class TeamMembers(msgspec.Struct):
    items: list[TeamMember]


class NewTeamMember(msgspec.Struct):
    membership_id: UUID


MEMBERS = "/teams/{team_id:str}/members"
VIEW, MANAGE = {"permission": TEAMS.view_permission}, {"permission": TEAMS.manage_permission}


async def _members(org: OrgContext, team_id: UUID) -> TeamMembers:
    listed = await members_of(org, team_id)
    return TeamMembers([TeamMember(r["membership_id"], r["name"], r["email"], r["added_at"]) for r in listed["members"]])


@get(MEMBERS, name="api.teams.members", opt=VIEW, responses=documented())
async def team_members(org: NamedDependency[OrgContext], team_id: FromPath[str]) -> TeamMembers:
    """The team's members in name order (the first 500)."""
    key = parse_id(team_id)
    await TEAMS.get(org.scope, key)
    return await _members(org, key)


@post(MEMBERS, name="api.teams.add_member", opt=MANAGE, status_code=201, responses=documented(409, 422))
async def team_member_add(
    request: Request, org: NamedDependency[OrgContext], team_id: FromPath[str], data: JSONBody[NewTeamMember],
    idempotency_key: IdempotencyKey = None,
) -> Response[TeamMembers]:
    """Add a member of the organization to the team (422 if already in it); the team's members.
    With ``Idempotency-Key``, a retry gets the first answer."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    key = parse_id(team_id)
    await add_member(org, key, {"membership_id": str(data.membership_id)})
    body = msgspec.json.encode(await _members(org, key))
    await limits.remember(org, request, 201, body, {})
    return Response(body, status_code=201, media_type="application/json")  # type: ignore[return-value]


@delete(MEMBERS + "/{membership_id:str}", name="api.teams.remove_member", opt=MANAGE, status_code=204, responses=documented())
async def team_member_remove(org: NamedDependency[OrgContext], team_id: FromPath[str], membership_id: FromPath[str]) -> None:
    """Take a member out of the team; they stay in the organization."""
    await remove_member(org, parse_id(team_id), parse_id(membership_id))


SPEC = resource.Spec(TEAMS, Team, TeamCreate, TeamUpdate, extra_routes=[team_members, team_member_add, team_member_remove])
ROUTES = resource.routes(SPEC)
