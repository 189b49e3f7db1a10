"""Teams: named groups of the org's members. Removing someone from the org drops them from its
teams (the database cascades through ``team_member``'s composite foreign key)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.errors import Invalid, NotFound
from portal.resources import common
from portal.resources.common import FormErrors
from portal.tenancy.context import OrgContext

TAKEN = "Another team in this organization already has this name."
MEMBERS_SHOWN = 500
# Up to this many candidates the add-member form offers a list; beyond it, an email field.
CHOICES_MAX = 300

_ONE = """SELECT t.id, t.name, t.description, t.created_at, t.updated_at,
                 (SELECT count(*) FROM team_member tm WHERE tm.org_id = {org} AND tm.team_id = t.id) AS members
          FROM team t WHERE t.org_id = {org} AND t.id = $1"""


def _public(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "description": row["description"]}


async def list_teams(ctx: OrgContext, q: str, page: int) -> dict[str, Any]:
    pattern = common.like_pattern(q) if q else None
    total = await ctx.scope.fetchval(
        """SELECT count(*) FROM team t WHERE t.org_id = {org}
           AND ($1::text IS NULL OR t.name ILIKE $1 OR t.description ILIKE $1)""",
        pattern,
    )
    pager = common.pager(total, page)
    rows = await ctx.scope.fetch(
        """SELECT t.id, t.name, t.description, t.updated_at,
                  (SELECT count(*) FROM team_member tm WHERE tm.org_id = {org} AND tm.team_id = t.id) AS members
           FROM team t WHERE t.org_id = {org}
           AND ($1::text IS NULL OR t.name ILIKE $1 OR t.description ILIKE $1)
           ORDER BY lower(t.name) LIMIT $2 OFFSET $3""",
        pattern,
        pager.size,
        pager.offset,
    )
    return {"teams": rows, "pager": pager, "q": q}


async def get_team(ctx: OrgContext, team_id: UUID, *, lock: bool = False) -> asyncpg.Record:
    row = await ctx.scope.fetchrow(_ONE + (" FOR UPDATE" if lock else ""), team_id)
    if row is None:
        raise NotFound()
    return row


async def members_of(ctx: OrgContext, team_id: UUID) -> dict[str, Any]:
    """The team's members and who could be added: two statements, whatever the sizes."""
    members = await ctx.scope.fetch(
        """SELECT m.id AS membership_id, m.role, u.name, u.email, tm.created_at AS added_at
           FROM team_member tm
           JOIN membership m ON m.org_id = tm.org_id AND m.id = tm.membership_id
           JOIN app_user u ON u.id = m.user_id
           WHERE tm.org_id = {org} AND tm.team_id = $1
           ORDER BY lower(u.name), u.email LIMIT $2""",
        team_id,
        MEMBERS_SHOWN,
    )
    candidates = await ctx.scope.fetch(
        """SELECT m.id AS membership_id, u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
           WHERE m.org_id = {org} AND NOT EXISTS (
               SELECT 1 FROM team_member tm WHERE tm.org_id = {org} AND tm.team_id = $1 AND tm.membership_id = m.id)
           ORDER BY lower(u.name), u.email LIMIT $2""",
        team_id,
        CHOICES_MAX + 1,
    )
    many = len(candidates) > CHOICES_MAX
    return {"members": members, "candidates": [] if many else candidates, "many_candidates": many}


async def team_detail(ctx: OrgContext, team_id: UUID) -> dict[str, Any]:
    team = await get_team(ctx, team_id)
    return {"team": team, **await members_of(ctx, team_id)}


def validate(form: dict[str, str]) -> dict[str, str]:
    errors = FormErrors()
    values = {"name": common.name_field(form, errors, noun="team"), "description": common.description_field(form, errors)}
    errors.raise_if_any()
    return values


async def create_team(ctx: OrgContext, form: dict[str, str]) -> UUID:
    values = validate(form)
    async with common.unique_name(TAKEN):
        team_id = await ctx.scope.fetchval(
            "INSERT INTO team (org_id, name, description, created_by) VALUES ({org}, $1, $2, $3) RETURNING id",
            values["name"], values["description"], ctx.user_id,
        )
    await audit.record(ctx, "team.created", target=("team", team_id, values["name"]), after=values)
    return team_id


async def update_team(ctx: OrgContext, team_id: UUID, form: dict[str, str]) -> bool:
    current = await get_team(ctx, team_id, lock=True)
    values = validate(form)
    before, after = common.changes(_public(current), values)
    if not after:
        return False
    async with common.unique_name(TAKEN):
        await ctx.scope.execute(
            "UPDATE team SET name = $2, description = $3, updated_at = now() WHERE org_id = {org} AND id = $1",
            team_id, values["name"], values["description"],
        )
    await audit.record(ctx, "team.updated", target=("team", team_id, values["name"]), before=before, after=after)
    return True


async def delete_team(ctx: OrgContext, team_id: UUID) -> str:
    current = await get_team(ctx, team_id, lock=True)
    await ctx.scope.execute("DELETE FROM team WHERE org_id = {org} AND id = $1", team_id)
    await audit.record(
        ctx, "team.deleted", target=("team", team_id, current["name"]), before={**_public(current), "members": current["members"]}
    )
    return current["name"]


async def _member(ctx: OrgContext, form: dict[str, str]) -> asyncpg.Record:
    """The org member chosen in the form: by id (the list) or by email (large orgs)."""
    raw_id = str(form.get("membership_id", "")).strip()
    email = str(form.get("email", "")).strip().lower()
    if raw_id:
        row = await ctx.scope.fetchrow(
            """SELECT m.id, u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
               WHERE m.org_id = {org} AND m.id = $1 FOR KEY SHARE OF m""",
            common.parse_id(raw_id),
        )
        if row is None:  # not a member of this org: the same answer as any foreign id
            raise NotFound()
        return row
    if not email:
        raise Invalid("Choose a member to add.", field_errors={"member": "Choose a member to add."})
    row = await ctx.scope.fetchrow(
        """SELECT m.id, u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
           WHERE m.org_id = {org} AND u.email = $1 FOR KEY SHARE OF m""",
        email[:320],
    )
    if row is None:
        message = "Nobody in this organization has that email address. Invite them first."
        raise Invalid(message, field_errors={"member": message})
    return row


async def add_member(ctx: OrgContext, team_id: UUID, form: dict[str, str]) -> str:
    team = await get_team(ctx, team_id, lock=True)
    member = await _member(ctx, form)
    added = await ctx.scope.fetchval(
        """INSERT INTO team_member (org_id, team_id, membership_id, created_by) VALUES ({org}, $1, $2, $3)
           ON CONFLICT (org_id, team_id, membership_id) DO NOTHING RETURNING id""",
        team_id, member["id"], ctx.user_id,
    )
    if added is None:
        message = f"{member['name']} is already in this team."
        raise Invalid(message, field_errors={"member": message})
    await audit.record(
        ctx, "team.member_added", target=("team", team_id, team["name"]),
        after={"membership_id": str(member["id"]), "email": member["email"]},
    )
    return member["name"]


async def remove_member(ctx: OrgContext, team_id: UUID, membership_id: UUID) -> str:
    team = await get_team(ctx, team_id, lock=True)
    row = await ctx.scope.fetchrow(
        """DELETE FROM team_member tm USING membership m, app_user u
           WHERE tm.org_id = {org} AND tm.team_id = $1 AND tm.membership_id = $2
             AND m.org_id = tm.org_id AND m.id = tm.membership_id AND u.id = m.user_id
           RETURNING u.name, u.email""",
        team_id, membership_id,
    )
    if row is None:
        raise NotFound()
    await audit.record(
        ctx, "team.member_removed", target=("team", team_id, team["name"]),
        before={"membership_id": str(membership_id), "email": row["email"]},
    )
    return row["name"]
