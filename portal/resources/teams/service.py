"""Teams: named groups of the org's members. Removing someone from the org drops them from its
teams (the database cascades through ``team_member``'s composite foreign key)."""

from __future__ import annotations

from typing import Any, Mapping
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.audit.actions import Action
from portal.errors import Invalid, NotFound
from portal.params import parse_id
from portal import records
from portal.resources import layer
from portal.tenancy.context import OrgContext

MEMBERS_SHOWN = 500
# Up to this many candidates the add-member form offers a list; beyond it, an email field.
CHOICES_MAX = 300


class Teams(layer.Resource):
    noun, plural, title, title_plural, alias = "team", "teams", "Team", "Teams", "t"
    intro = "Teams group the people of your organization, e.g. by who looks after which agents."
    columns = """t.id, t.name, t.description, t.created_at, t.updated_at,
                 (SELECT count(*) FROM team_member tm WHERE tm.org_id = {org} AND tm.team_id = t.id) AS members"""
    search = ("t.name", "t.description")
    fields = (layer.name("team"), layer.DESCRIPTION)
    export = layer.Export(
        "teams.json",
        "Teams and their members (membership ids refer to members.json).",
        layer.export_fields(
            layer.EXPORTED_DESCRIPTION,
            records.Field(
                "members", records.array_of(records.record(membership_id=records.ID, email=records.STRING)),
                "coalesce(tm.members, '[]')", convert=records.json_value,
            ),
            created_by=False,
        ),
        joins="""LEFT JOIN LATERAL (
                     SELECT json_agg(json_build_object('membership_id', x.membership_id, 'email', u.email::text)
                                     ORDER BY x.created_at, x.id) AS members
                     FROM team_member x
                     JOIN membership m ON m.org_id = {org} AND m.id = x.membership_id
                     JOIN app_user u ON u.id = m.user_id
                     WHERE x.org_id = {org} AND x.team_id = t.id
                 ) tm ON true""",
        requires=("team", "team_member"),
    )
    created_message = "Team created. Now add its members."
    sections = (("member_list", "team-members"),)

    def audited_on_delete(self, row: Any) -> dict[str, Any]:
        return {**self.audited(row), "members": row["members"]}

    def delete_question(self, row: Any) -> str:
        return f"Delete the team “{row['name']}”? Its members stay in the organization."

    def delete_consequence(self, row: Any) -> str:
        count = row["members"]
        if not count:
            return "The team is empty; nobody is affected."
        return f"Its {count} member{'s stay' if count != 1 else ' stays'} in the organization; only the team goes."

    async def detail_context(self, ctx: OrgContext, row: Any) -> dict[str, Any]:
        return {"form": {}, **await members_of(ctx, row["id"])}


TEAMS = Teams()


async def members_of(ctx: OrgContext, team_id: UUID) -> dict[str, Any]:
    """The team's members and who could be added: two statements, whatever the sizes."""
    members = await ctx.scope.fetch(
        """SELECT m.id AS membership_id, m.role, r.name AS role_name, u.name, u.email, tm.created_at AS added_at
           FROM team_member tm
           JOIN membership m ON m.org_id = tm.org_id AND m.id = tm.membership_id
           JOIN app_user u ON u.id = m.user_id
           LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
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


# By id (the list) or by email (large orgs): whichever the form sent; the other is NULL.
_MEMBER = """SELECT m.id, u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
             WHERE m.org_id = {org} AND (m.id = $1::uuid OR u.email = $2::text) FOR KEY SHARE OF m"""


async def _member(ctx: OrgContext, form: Mapping[str, str]) -> asyncpg.Record:
    """The org member chosen in the form: by id (the list) or by email (large orgs)."""
    raw_id = str(form.get("membership_id", "")).strip()
    email = str(form.get("email", "")).strip().lower()
    if raw_id:
        row = await ctx.scope.fetchrow(_MEMBER, parse_id(raw_id), None)
        if row is None:  # not a member of this org: the same answer as any foreign id
            raise NotFound()
        return row
    if not email:
        raise Invalid("Choose a member to add.", field_errors={"member": "Choose a member to add."})
    row = await ctx.scope.fetchrow(_MEMBER, None, email[:320])
    if row is None:
        message = "Nobody in this organization has that email address. Invite them first."
        raise Invalid(message, field_errors={"member": message})
    return row


async def add_member(ctx: OrgContext, team_id: UUID, form: Mapping[str, str]) -> str:
    team = await TEAMS.get(ctx.scope, team_id, lock=True)
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
        ctx, Action.TEAM_MEMBER_ADDED, target=("team", team_id, team["name"]),
        after={"membership_id": str(member["id"]), "email": member["email"]},
    )
    return member["name"]


async def remove_member(ctx: OrgContext, team_id: UUID, membership_id: UUID) -> str:
    team = await TEAMS.get(ctx.scope, team_id, lock=True)
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
        ctx, Action.TEAM_MEMBER_REMOVED, target=("team", team_id, team["name"]),
        before={"membership_id": str(membership_id), "email": row["email"]},
    )
    return row["name"]
