"""The org's SCIM service: scim2-server's protocol steps over the org's memberships and teams.

scim2-server does the protocol (routing, request validation, PATCH application, ETags, error
bodies); ``OrgStorage`` is the org's data, read and written through the org's ``TenantScope``
inside the request's transaction, exactly like a page. A write reads the membership locked
(``FOR UPDATE``, after the org row ``enter_token`` locked): a person editing the same member
waits or is waited for, as with role changes. Being built (issue 17): Groups come next
(``docs/scim.md``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from typing import Any, Callable, NamedTuple
from uuid import UUID

import asyncpg

from scim2_models import (
    ConflictException, Context, InvalidValueException, Meta, NotFoundException, NotImplementedException,
    PreconditionFailedException, Resource,
    ResourceType, SearchRequest, UniquenessException,
)
from scim2_server.service import ScimService
from scim2_server.storage import AsyncScimStorage, SearchPage

from portal import clock, emails, mail
from portal.mail import queue
from portal.mail.message import one_line
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.errors import Invalid
from portal.db import engine as db
from portal.invites.service import check_seats
from portal.resources import common
from portal.resources.agents.service import Agents
from portal.resources.common import DESCRIPTION_MAX, NAME_MAX, SPACE, has_control, savepoint
from portal.scim import models
from portal.scim.filters import Col, JsonItems, where_clause
from portal.tenancy.context import OrgContext

USER_COLUMNS = {
    ("id", None): Col("m.id::text"),
    ("user_name", None): Col("u.email"),
    ("external_id", None): Col("m.scim_external_id"),
    ("display_name", None): Col("coalesce(m.scim_display_name, u.name)"),
    ("active", None): Col("(m.suspended_at IS NULL)"),
    ("emails", None): JsonItems("m.scim_emails"),
    ("emails", "value"): JsonItems("m.scim_emails"),
    ("emails", "type"): JsonItems("m.scim_emails"),
}
_USER = """SELECT m.id, m.user_id, m.scim_managed, u.email, u.name, m.role, m.custom_role_id, r.name AS role_name, m.suspended_at, m.scim_active, m.scim_external_id,
                  m.scim_display_name, m.scim_given_name, m.scim_family_name, m.scim_formatted_name, m.scim_emails,
                  m.scim_version, m.created_at, coalesce(m.scim_updated_at, m.created_at) AS updated_at
           FROM membership m JOIN app_user u ON u.id = m.user_id
           LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
           WHERE m.org_id = {org}"""


GROUP_COLUMNS = {
    ("id", None): Col("t.id::text"),
    ("display_name", None): Col("t.name"),
    ("external_id", None): Col("t.scim_external_id"),
}
_GROUP = """SELECT t.id, t.name, t.scim_external_id, t.created_at, t.updated_at,
                   (SELECT coalesce(array_agg(tm.membership_id ORDER BY tm.created_at, tm.membership_id), '{}')
                    FROM team_member tm WHERE tm.org_id = {org} AND tm.team_id = t.id) AS members
            FROM team t WHERE t.org_id = {org}"""


AGENT_COLUMNS = {
    ("id", None): Col("a.id::text"),
    ("name", None): Col("a.name"),
    ("display_name", None): Col("a.scim_display_name"),
    ("external_id", None): Col("a.scim_external_id"),
    ("agent_type", None): Col("a.scim_agent_type"),
    # as ``_agent`` shows it: false while paused, absent while the IdP never said (or removed it)
    ("active", None): Col("(CASE WHEN a.status = 'paused' THEN false WHEN a.scim_active IS NOT NULL THEN true END)"),
}
# The agents page's columns (its workflow count included) and what the IdP keeps beside them.
_AGENT = f"""SELECT {Agents.columns}, a.scim_external_id, a.scim_display_name, a.scim_agent_type, a.scim_active
            FROM agent a WHERE a.org_id = {{org}}"""
UNASSIGNED_MODEL = "unassigned"  # an agent an IdP creates: someone in the org chooses its model


class PortalService(ScimService):
    def patch_response(self, base_url, resource, response_parameters):
        """200 with the resource (RFC 7644 §3.5.2 allows 204; IdP conformance probes want the resource)."""
        return self.resource_response(self.publish(base_url, resource), Context.RESOURCE_REPLACEMENT_RESPONSE, response_parameters)


def _user(row: Any) -> Resource:
    emails = json.loads(row["scim_emails"]) if isinstance(row["scim_emails"], str) else row["scim_emails"]
    name = None
    if row["scim_given_name"] or row["scim_family_name"] or row["scim_formatted_name"]:
        name = models.PortalName(given_name=row["scim_given_name"], family_name=row["scim_family_name"], formatted=row["scim_formatted_name"])
    user = models.OrgUser(
        id=str(row["id"]), user_name=row["email"], external_id=row["scim_external_id"], name=name,
        # What the IdP set, for those it provisioned (so removing it removes it); the account's name for the others.
        display_name=row["scim_display_name"] if row["scim_managed"] else row["name"], emails=[models.PortalEmail(**e) for e in emails] if emails else None,
        active=False if row["suspended_at"] else row["scim_active"],
    )
    role = row["role_name"] if row["role"] == "custom" else row["role"]
    if role != "member":  # absent means the default role
        user[models.PraesidiaUser] = models.PraesidiaUser(role=role)
    shown = json.dumps(user.model_dump(mode="json", exclude_none=True), sort_keys=True, default=str).encode()
    # The version of what SCIM shows, whoever changed it (the IdP, or a person on the members page).
    user.meta = Meta(resource_type="User", created=row["created_at"], last_modified=row["updated_at"],
                     version=f'W/"{hashlib.sha256(shown).hexdigest()[:20]}"')
    return user


def _group(row: Any) -> Resource:
    members = [models.GroupMember(value=str(m), ref=f"Users/{m}", type="User") for m in row["members"]]
    group = models.Group(id=str(row["id"]), display_name=row["name"], external_id=row["scim_external_id"], members=members or None)
    group.meta = _meta("Group", row)
    return group


def _agent(row: Any) -> Resource:
    agent = models.Agent(
        id=str(row["id"]), name=row["name"], display_name=row["scim_display_name"], agent_type=row["scim_agent_type"],
        # The agent's status says: paused is false, running is true (or absent while the IdP
        # never said or removed it). What the IdP last said never outlives a pause or resume
        # made in the portal, so a later unrelated PATCH can't re-pause a resumed agent.
        active=False if row["status"] == "paused" else (None if row["scim_active"] is None else True),
        description=row["description"] or None, external_id=row["scim_external_id"],
    )
    agent.meta = _meta("Agent", row)
    return agent


def _meta(resource_type: str, row: Any) -> Meta:
    """A team's or agent's meta: its version is its last change, to the microsecond."""
    version = f'W/"{int(row["updated_at"].timestamp() * 1_000_000)}"'
    return Meta(resource_type=resource_type, created=row["created_at"], last_modified=row["updated_at"], version=version)


class _Kind(NamedTuple):
    """What a SCIM resource type is in the database."""

    columns: dict  # the attributes a filter may name
    select: str
    counted: str  # FROM … WHERE, for totalResults
    order: str  # stable paging
    shown: Callable[[Any], Resource]


_KINDS = {
    "User": _Kind(USER_COLUMNS, _USER, "membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = {org}", "m.created_at, m.id", _user),
    "Group": _Kind(GROUP_COLUMNS, _GROUP, "team t WHERE t.org_id = {org}", "t.created_at, t.id", _group),
    "Agent": _Kind(AGENT_COLUMNS, _AGENT, "agent a WHERE a.org_id = {org}", "a.created_at, a.id", _agent),
}


def _json_text(value: Any) -> str | None:
    """A stored jsonb value as ``_attributes`` writes it, to compare."""
    if value is None:
        return None
    return json.dumps(json.loads(value) if isinstance(value, str) else value)


def _key(resource_id: str) -> UUID:
    try:
        return UUID(resource_id)
    except (ValueError, TypeError):
        raise NotFoundException(detail="No such resource in this organization.") from None


log = logging.getLogger("portal.scim")
def _text(attribute: str, value: str | None, limit: int = 200, *, multiline: bool = False, kept: Any = None) -> str | None:
    """An attribute as stored: at most ``limit`` characters, no control characters (tab and
    newlines allowed when ``multiline``), the same rule as the portal's forms; 400 ``invalidValue``
    otherwise. A value the resource already shows (``kept``) passes as it is: an update that leaves
    it alone (a PATCH that only suspends) must not fail on what a person typed at sign-up or an
    earlier rule let in."""
    if value is None or value == kept:
        return value
    if len(value) > limit:
        raise InvalidValueException(detail=f"{attribute}: at most {limit} characters.")
    if has_control(value, multiline=multiline):
        raise InvalidValueException(detail=f"{attribute}: no control characters{' but tab and newlines' if multiline else ''}.")
    return value


def _name(attribute: str, value: str | None, *, kept: str | None = None) -> str:
    """A team's or agent's name: no control characters, runs of spaces made one, 1 to NAME_MAX
    characters (blank as the portal's forms see it: ``common.SPACE``)."""
    if value is not None and value == kept:
        return value
    _text(attribute, value, 10 * NAME_MAX)  # control characters first: ``str.split`` would make some of them spaces
    name = " ".join(w for w in re.split(f"[{re.escape(SPACE)}]+", value or "") if w)
    if not name or len(name) > NAME_MAX:
        raise InvalidValueException(detail=f"{attribute}: 1 to {NAME_MAX} characters.")
    return name


ASSIGNABLE = {"member", "billing_admin", "compliance_officer"}
NO_PASSWORD = "!scim:"  # an account provisioned by SCIM, until its person sets a password (never verifies)


class OrgStorage(AsyncScimStorage):
    """One organization's Users (its memberships)."""

    def __init__(self, ctx: OrgContext, *, writing: bool = False, replacing: bool = False, agents: bool = False) -> None:
        self.ctx = ctx
        self.agents = agents  # the token may provision agents (``api_token.manages_agents``)
        self.writing = writing  # lock what is read: a write follows
        self.replacing = replacing  # a PUT: what it leaves out of role and active stays as it is
        self.new_accounts: list[UUID] = []  # to be sent a set-password link once the transaction commits

    async def _row(self, member_id: UUID, *, lock: bool) -> Any:
        row = await self.ctx.scope.fetchrow(_USER + " AND m.id = $1" + (" FOR UPDATE OF m" if lock else ""), member_id)
        if row is None:
            raise NotFoundException(detail="No such resource in this organization.")
        return row

    async def get(self, resource_type: ResourceType, resource_id: str, *, response_parameters=None) -> Resource:
        if resource_type.name == "Group":
            return _group(await self._team(_key(resource_id), lock=self.writing))
        if resource_type.name == "Agent":
            return _agent(await self._agent(_key(resource_id), lock=self.writing))
        return _user(await self._row(_key(resource_id), lock=self.writing))

    async def _agent(self, agent_id: UUID, *, lock: bool) -> Any:
        _agents_allowed(self)
        row = await self.ctx.scope.fetchrow(_AGENT + " AND a.id = $1" + (" FOR UPDATE OF a" if lock else ""), agent_id)
        if row is None:
            raise NotFoundException(detail="No such resource in this organization.")
        return row

    async def _team(self, team_id: UUID, *, lock: bool) -> Any:
        if lock:
            await self.ctx.scope.execute("SELECT 1 FROM team t WHERE t.org_id = {org} AND t.id = $1 FOR UPDATE", team_id)
        row = await self.ctx.scope.fetchrow(_GROUP + " AND t.id = $1", team_id)
        if row is None:
            raise NotFoundException(detail="No such resource in this organization.")
        return row

    async def _role(self, user: Resource) -> tuple[str, UUID | None]:
        """The role the IdP asks for: a built-in one (never owner) or one of the org's custom roles by name."""
        extension = user[models.PraesidiaUser]
        wanted = (extension.role if extension else None) or "member"
        if wanted in ASSIGNABLE:
            return wanted, None
        custom = await self.ctx.scope.fetchval("SELECT r.id FROM org_role r WHERE r.org_id = {org} AND lower(r.name) = lower($1)", wanted)
        if custom is None:
            raise InvalidValueException(detail=f"“{wanted}” is not a role of this organization (the owner's is never given by SCIM).")
        return "custom", custom

    def _attributes(self, user: Resource, shown: Resource | None = None) -> list[Any]:
        """What the IdP keeps of a member, checked (``shown``: the member as it read before this
        update; what it still says passes as it is)."""
        name, was = user.name, (shown.name if shown else None)
        values = [
            _text("externalId", user.external_id, kept=shown and shown.external_id),
            _text("displayName", user.display_name, kept=shown and shown.display_name),
            _text("name.givenName", name.given_name if name else None, kept=was and was.given_name),
            _text("name.familyName", name.family_name if name else None, kept=was and was.family_name),
            _text("name.formatted", name.formatted if name else None, 400, kept=was and was.formatted),
        ]
        listed = [e.model_dump(exclude_none=True, mode="json") for e in user.emails or []]
        kept_emails = {e.value for e in (shown.emails or [])} if shown else set()
        for e in listed:
            _text("emails.value", e.get("value"), 320, kept=e.get("value") if e.get("value") in kept_emails else None)
        return [*values, json.dumps(listed) if listed else None, user.active]

    async def create(self, resource_type, resource):
        if resource_type.name == "Agent":
            return await _create_agent(self, resource)
        if resource_type.name == "Group":
            return await _create_group(self, resource)
        try:
            email = emails.normalize(resource.user_name or "")
        except ValueError as exc:
            raise InvalidValueException(detail=f"userName must be an email address: {exc}") from None
        role, custom_role_id = await self._role(resource)
        try:
            await check_seats(self.ctx, clock.now())
        except Invalid as exc:  # every seat taken
            raise ConflictException(detail=str(exc)) from None
        accounts = db.current_connection()  # a global table: the request's own connection, no tenant filter
        account = await accounts.fetchrow("SELECT id, name FROM app_user WHERE email = $1", email)
        if account is None:
            display = resource.display_name or (resource.name.formatted if resource.name else None) or email.split("@")[0]
            account = await accounts.fetchrow(
                """INSERT INTO app_user (email, name, password_hash, scim_org_id) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (email) DO NOTHING RETURNING id, name""",
                email, display[:100].replace("\x00", ""), NO_PASSWORD + secrets.token_urlsafe(16), self.ctx.org.id,
            )
            if account is None:  # created by another request meanwhile: it just gains a membership
                account = await accounts.fetchrow("SELECT id, name FROM app_user WHERE email = $1", email)
            else:
                self.new_accounts.append(account["id"])
        else:  # held until this request ends: no rename of it by another org's IdP meanwhile
            await accounts.execute("SELECT 1 FROM app_user WHERE id = $1 FOR SHARE", account["id"])
        if resource.external_id and await self.ctx.scope.fetchval(
            "SELECT 1 FROM membership m WHERE m.org_id = {org} AND m.scim_external_id = $1", resource.external_id
        ):
            raise UniquenessException(detail="Another member of this organization has this externalId.")
        member_id = await self.ctx.scope.fetchval(
            """INSERT INTO membership (org_id, user_id, role, custom_role_id, scim_managed, scim_external_id, scim_display_name,
                                       scim_given_name, scim_family_name, scim_formatted_name, scim_emails, scim_active,
                                       suspended_at, scim_updated_at)
               VALUES ({org}, $1, $2, $3, true, $4, $5, $6, $7, $8, $9::jsonb, $10, CASE WHEN $10 IS FALSE THEN now() END, now())
               ON CONFLICT (org_id, user_id) DO NOTHING RETURNING id""",
            account["id"], role, custom_role_id, *self._attributes(resource),
        )
        if member_id is None:
            raise UniquenessException(detail="This person is already a member of this organization.")
        await audit.record(
            self.ctx, Action.MEMBER_JOINED, target=("membership", member_id, email),
            after={"role": role, **({"custom_role_id": str(custom_role_id)} if custom_role_id else {}), "via": "scim"},
        )
        return _user(await self._row(member_id, lock=False))

    async def update(self, resource_type, resource, *, expected_version=None):
        if resource_type.name == "Agent":
            return await _update_agent(self, resource, expected_version)
        if resource_type.name == "Group":
            return await _update_group(self, resource, expected_version)
        current = await self._row(_key(resource.id), lock=True)
        shown = _user(current)
        if expected_version is not None and expected_version != shown.meta.version:
            raise PreconditionFailedException()
        owner = current["role"] == "owner"
        try:
            email = emails.normalize(resource.user_name or "")
        except ValueError as exc:
            raise InvalidValueException(detail=f"userName must be an email address: {exc}") from None
        if owner and (email != current["email"] or resource.active is False):
            raise ConflictException(detail="The owner can't be suspended, renamed or given another role through SCIM.")
        label = current["email"] if email == current["email"] else await self._rename(current, email)

        # A PUT that leaves out the role or ``active`` (Okta's does) changes neither; a PATCH that
        # removes them means the default: member, active.
        extension = resource[models.PraesidiaUser]
        asked = extension.role if extension else None
        if not owner and not (self.replacing and asked is None):
            shown_role = shown[models.PraesidiaUser].role if shown[models.PraesidiaUser] else None
            if (asked or "member") != (shown_role or "member"):
                role, custom_role_id = await self._role(resource)
                await self.ctx.scope.execute(
                    "UPDATE membership SET role = $2, custom_role_id = $3 WHERE org_id = {org} AND id = $1", current["id"], role, custom_role_id
                )
                await audit.record(self.ctx, Action.MEMBER_ROLE_CHANGED, target=("membership", current["id"], label),
                                   before={"role": shown_role or "member"}, after={"role": asked or "member", "via": "scim"})
        if not (self.replacing and resource.active is None):
            suspended = resource.active is False
            if suspended != (current["suspended_at"] is not None):
                await self.ctx.scope.execute(
                    "UPDATE membership SET suspended_at = CASE WHEN $2 THEN now() END WHERE org_id = {org} AND id = $1", current["id"], suspended
                )
                await audit.record(self.ctx, Action.MEMBER_SUSPENDED if suspended else Action.MEMBER_REACTIVATED,
                                   target=("membership", current["id"], label))
        attributes = self._attributes(resource, shown)
        if self.replacing and resource.active is None:
            attributes[-1] = current["scim_active"]
        names = ("externalId", "displayName", "givenName", "familyName", "formatted", "emails", "active")
        before = [current["scim_external_id"], shown.display_name, current["scim_given_name"], current["scim_family_name"],
                  current["scim_formatted_name"], _json_text(current["scim_emails"]), current["scim_active"]]
        changed = {n: (b, a) for n, b, a in zip(names, before, attributes) if b != a and n != "active"}
        await self.ctx.scope.execute(
            """UPDATE membership SET scim_external_id = $2, scim_display_name = $3, scim_given_name = $4, scim_family_name = $5,
                      scim_formatted_name = $6, scim_emails = $7::jsonb, scim_active = $8, scim_version = scim_version + 1,
                      scim_updated_at = now()
               WHERE org_id = {org} AND id = $1""",
            current["id"], *attributes,
        )
        if changed:
            await audit.record(self.ctx, Action.MEMBER_SCIM_UPDATED, target=("membership", current["id"], label),
                               before={n: b for n, (b, _) in changed.items()}, after={n: a for n, (_, a) in changed.items()})
        return _user(await self._row(current["id"], lock=False))

    async def _rename(self, current: Any, email: str) -> str:
        """A new userName is a new sign-in email: only for an account this org's SCIM created,
        whose person has not chosen a password yet and which no other org shares (409 otherwise);
        never an address another account has (409 uniqueness). The old address's link dies; the
        new address gets its own."""
        accounts = db.current_connection()
        account = await accounts.fetchrow(
            "SELECT scim_org_id, password_hash FROM app_user WHERE id = $1 FOR UPDATE", current["user_id"]
        )
        # Every organization of the account, through the policy that shows a person their own
        # memberships (the tenant's policy would show this org's alone), then back to no person.
        await accounts.execute("SELECT set_config('app.user_id', $1, true)", str(current["user_id"]))
        shared = await accounts.fetchval("SELECT count(*) > 1 FROM membership WHERE user_id = $1", current["user_id"])  # unscoped: the account's orgs, through own_memberships
        await accounts.execute("SELECT set_config('app.user_id', '', true)")
        if account["scim_org_id"] != self.ctx.org.id or not account["password_hash"].startswith(NO_PASSWORD) or shared:
            raise ConflictException(detail="userName is the person's sign-in email: this organization's identity provider can't change it.")
        try:
            async with savepoint():
                await accounts.execute(
                    "UPDATE app_user SET email = $2, password_hash = $3, email_verified_at = NULL WHERE id = $1",
                    current["user_id"], email, NO_PASSWORD + secrets.token_urlsafe(16),
                )
        except asyncpg.UniqueViolationError:
            raise UniquenessException(detail="Another account has this email address.") from None
        self.new_accounts.append(current["user_id"])
        await audit.record(self.ctx, Action.MEMBER_SCIM_UPDATED, target=("membership", current["id"], email),
                           before={"email": current["email"]}, after={"email": email})
        return email

    async def delete(self, resource_type, resource_id, *, expected_version=None):
        if resource_type.name == "Agent":
            return await _delete_agent(self, resource_id, expected_version)
        if resource_type.name == "Group":
            team = await self._team(_key(resource_id), lock=True)
            if expected_version is not None and expected_version != _group(team).meta.version:
                raise PreconditionFailedException()
            await self.ctx.scope.execute("DELETE FROM team WHERE org_id = {org} AND id = $1", team["id"])
            await audit.record(self.ctx, Action.TEAM_DELETED, target=("team", team["id"], team["name"]),
                               before={"name": team["name"], "members": len(team["members"]), "via": "scim"})
            return
        current = await self._row(_key(resource_id), lock=True)
        if expected_version is not None and expected_version != _user(current).meta.version:
            raise PreconditionFailedException()
        if current["role"] == "owner":
            raise ConflictException(detail="The owner can't be removed through SCIM: ownership is transferred first.")
        await self.ctx.scope.execute("DELETE FROM membership WHERE org_id = {org} AND id = $1", current["id"])
        await audit.record(self.ctx, Action.MEMBER_REMOVED, target=("membership", current["id"], current["email"]),
                           before={"role": current["role"], "via": "scim"})

    async def search(self, resource_types: list[ResourceType], search_request: SearchRequest, *, position=None) -> SearchPage:
        if len(resource_types) != 1:
            raise NotImplementedException(detail="Search across resource types is not supported: search Users, Groups or Agents.")
        if resource_types[0].name == "Agent":
            _agents_allowed(self)
        columns, select, counted, order, shown = _KINDS[resource_types[0].name]
        where, params = where_clause(search_request.filter, columns)
        n = len(params)
        total = await self.ctx.scope.fetchval(f"SELECT count(*) FROM {counted} AND {where}", *params)
        count = search_request.count if search_request.count is not None else 100
        rows = await self.ctx.scope.fetch(
            f"{select} AND {where} ORDER BY {order} OFFSET ${n + 1} LIMIT ${n + 2}",
            *params, min(search_request.start_index_0 or 0, 2**62), count,
        )
        return SearchPage(total=total, resources=[shown(r) for r in rows])


async def queue_set_password_links(ctx: OrgContext, user_ids: list[UUID]) -> int:
    """Each account the provisioning request created gets a welcome with its link to choose a
    password (a reset link, bound to the placeholder hash: it dies once used), queued in the
    outbox in the request's own transaction: if that rolls back, nobody was created and nothing
    is sent. Accounts whose person has chosen a password meanwhile get none. How many were queued."""
    from portal.accounts import reset  # the accounts layer sits above this one

    rows = await db.current_connection().fetch(
        "SELECT id, email, name, password_hash FROM app_user WHERE id = ANY($1::uuid[]) AND starts_with(password_hash, $2)",
        list(dict.fromkeys(user_ids)), NO_PASSWORD,
    )
    org_name = ctx.org.name
    for row in rows:
        link = reset.reset_link(reset.make_token(row["id"], row["password_hash"]))
        text, html = mail.render_mail("scim_welcome", name=row["name"], email=row["email"], org_name=org_name, link=link, valid_for="1 hour")
        await queue.enqueue(
            mail.Mail(to=row["email"], subject=f"{one_line(org_name)} added you to Praesidia: choose your password",
                      text=text, html=html, kind="scim-welcome", link=link),
            scope=ctx.scope, ref_id=row["id"],
        )
    return len(rows)


UNDELIVERED_SHOWN = 50  # the welcomes the SCIM page lists, and one retry sends again
_UNDELIVERED = "mail_outbox WHERE org_id = {org} AND kind = 'scim-welcome' AND status = 'dead'"


async def undelivered_welcomes(ctx: OrgContext) -> list[Any]:
    """Welcomes given up, newest first (the owner's SCIM page shows them, with a retry)."""
    return await ctx.scope.fetch(
        f"SELECT recipient, last_error, created_at FROM {_UNDELIVERED} ORDER BY created_at DESC, id DESC LIMIT $1", UNDELIVERED_SHOWN,
    )


async def retry_welcomes(ctx: OrgContext) -> int:
    """A fresh welcome for each undelivered one the page lists whose person is still a member
    without a password: a new link (the old one may have expired while the mail server was down).
    How many were sent again."""
    rows = await ctx.scope.fetch(
        "UPDATE mail_outbox SET status = 'cancelled', payload = NULL WHERE org_id = {org} AND id IN ("
        f"SELECT id FROM {_UNDELIVERED} ORDER BY created_at DESC, id DESC LIMIT $1 FOR UPDATE) RETURNING ref_id",
        UNDELIVERED_SHOWN,
    )
    members = await ctx.scope.fetch(
        "SELECT user_id FROM membership WHERE org_id = {org} AND user_id = ANY($1::uuid[])",
        [r["ref_id"] for r in rows if r["ref_id"]],
    )
    return await queue_set_password_links(ctx, [m["user_id"] for m in members])


# -- Groups: the org's teams ------------------------------------------------------------------


def _team_name(group: Resource, kept: str | None = None) -> str:
    return _name("displayName", group.display_name, kept=kept)


async def _members_of_org(ctx: OrgContext, group: Resource) -> list[UUID]:
    """The members the group names that are this org's, in order (others are ignored, as IdPs expect)."""
    wanted = []
    for member in group.members or []:
        try:
            wanted.append(UUID(str(member.value)))
        except (ValueError, TypeError):
            continue
    if not wanted:
        return []
    rows = await ctx.scope.fetch("SELECT m.id FROM membership m WHERE m.org_id = {org} AND m.id = ANY($1::uuid[]) FOR KEY SHARE", wanted)
    found = {r["id"] for r in rows}
    return [m for m in dict.fromkeys(wanted) if m in found]


async def _set_members(ctx: OrgContext, team_id: UUID, name: str, members: list[UUID], before: list[UUID]) -> None:
    added, removed = [m for m in members if m not in before], [m for m in before if m not in members]
    if removed:
        await ctx.scope.execute(
            "DELETE FROM team_member WHERE org_id = {org} AND team_id = $1 AND membership_id = ANY($2::uuid[])", team_id, removed
        )
    for membership_id in added:
        await ctx.scope.execute(
            "INSERT INTO team_member (org_id, team_id, membership_id, created_by) VALUES ({org}, $1, $2, $3)",
            team_id, membership_id, ctx.user_id,
        )
    for action, ids in ((Action.TEAM_MEMBER_ADDED, added), (Action.TEAM_MEMBER_REMOVED, removed)):
        for membership_id in ids:
            await audit.record(ctx, action, target=("team", team_id, name), after={"membership_id": str(membership_id), "via": "scim"})


async def _create_group(storage: OrgStorage, group: Resource) -> Resource:
    ctx, name, external_id = storage.ctx, _team_name(group), _text("externalId", group.external_id)
    try:
        async with savepoint():
            team_id = await ctx.scope.fetchval(
                "INSERT INTO team (org_id, name, scim_external_id, created_by) VALUES ({org}, $1, $2, $3) RETURNING id",
                name, external_id, ctx.user_id,
            )
    except asyncpg.UniqueViolationError:
        raise UniquenessException(detail="Another team of this organization has this name.") from None
    except asyncpg.StringDataRightTruncationError:
        raise InvalidValueException(detail="externalId: at most 200 characters.") from None
    await audit.record(ctx, Action.TEAM_CREATED, target=("team", team_id, name), after={"name": name, "via": "scim"})
    await _set_members(ctx, team_id, name, await _members_of_org(ctx, group), [])
    return _group(await storage._team(team_id, lock=False))


async def _update_group(storage: OrgStorage, group: Resource, expected_version: str | None) -> Resource:
    ctx = storage.ctx
    current = await storage._team(_key(group.id), lock=True)
    if expected_version is not None and expected_version != _group(current).meta.version:
        raise PreconditionFailedException()
    name = _team_name(group, current["name"])
    external_id = _text("externalId", group.external_id, kept=current["scim_external_id"])
    changed = False
    if name != current["name"] or external_id != current["scim_external_id"]:
        try:
            async with savepoint():
                await ctx.scope.execute(
                    "UPDATE team SET name = $2, scim_external_id = $3 WHERE org_id = {org} AND id = $1", current["id"], name, external_id
                )
        except asyncpg.UniqueViolationError:
            raise UniquenessException(detail="Another team of this organization has this name.") from None
        except asyncpg.StringDataRightTruncationError:
            raise InvalidValueException(detail="externalId: at most 200 characters.") from None
        await audit.record(ctx, Action.TEAM_UPDATED, target=("team", current["id"], name),
                           before={"name": current["name"]}, after={"name": name, "via": "scim"})
        changed = True
    members = await _members_of_org(ctx, group)
    if set(members) != set(current["members"]):
        await _set_members(ctx, current["id"], name, members, list(current["members"]))
        changed = True
    if changed:  # a new version: updated_at moves
        await ctx.scope.execute("UPDATE team SET updated_at = clock_timestamp() WHERE org_id = {org} AND id = $1", current["id"])
    return _group(await storage._team(current["id"], lock=False))


# -- Agents: the org's agents (draft-abbey-scim-agent-extension-00) ---------------------------


def _agent_fields(agent: Resource, current: Any = None) -> tuple[str, str, str, str | None, str | None, str | None]:
    """(name, description, status, externalId, displayName, agentType) as stored; 400 otherwise.
    The status as ``active`` asks (absent: the default, a running agent). ``current``: the agent's
    row before this update (what is unchanged passes as it is)."""
    kept = current or {}
    name = _name("name", agent.name, kept=kept.get("name"))
    description = _text("description", agent.description or "", DESCRIPTION_MAX, multiline=True, kept=kept.get("description"))
    status = "paused" if agent.active is False else "active"
    return (name, description or "", status, _text("externalId", agent.external_id, kept=kept.get("scim_external_id")),
            _text("displayName", agent.display_name, kept=kept.get("scim_display_name")),
            _text("agentType", agent.agent_type, 100, kept=kept.get("scim_agent_type")))


def _agents_allowed(storage: OrgStorage) -> OrgContext:
    """The org, for a token its owner allowed agents; 404 for the others (defence in depth: their
    service has no Agents resource at all)."""
    if not storage.agents:
        raise NotFoundException(detail="This token doesn't provision agents: its owner can make one that does.")
    return storage.ctx


async def _create_agent(storage: OrgStorage, agent: Resource) -> Resource:
    ctx = _agents_allowed(storage)
    name, description, status, external_id, display_name, agent_type = _agent_fields(agent)
    try:
        async with savepoint():
            agent_id = await ctx.scope.fetchval(
                """INSERT INTO agent (org_id, name, description, model, status, created_by, scim_external_id, scim_display_name,
                                     scim_agent_type, scim_active)
                   VALUES ({org}, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
                name, description, UNASSIGNED_MODEL, status, ctx.user_id, external_id, display_name, agent_type, agent.active,
            )
    except asyncpg.UniqueViolationError:
        raise UniquenessException(detail="Another agent of this organization has this name.") from None
    await audit.record(ctx, Action.AGENT_CREATED, target=("agent", agent_id, name),
                       after={"name": name, "model": UNASSIGNED_MODEL, "status": status, "via": "scim"})
    return _agent(await storage._agent(agent_id, lock=False))


async def _update_agent(storage: OrgStorage, agent: Resource, expected_version: str | None) -> Resource:
    ctx = storage.ctx  # ``_agent`` refuses a token without agents
    current = await storage._agent(_key(agent.id), lock=True)
    if expected_version is not None and expected_version != _agent(current).meta.version:
        raise PreconditionFailedException()
    name, description, status, external_id, display_name, agent_type = _agent_fields(agent, current)
    # As for Users: a PUT that leaves out ``active`` changes nothing of it; a PATCH that removes it
    # means the default, a running agent.
    said = agent.active
    if storage.replacing and agent.active is None:
        status, said = current["status"], current["scim_active"]
    after = {"name": name, "description": description, "status": status, "scim_external_id": external_id,
             "scim_display_name": display_name, "scim_agent_type": agent_type, "scim_active": said}
    before, changed = common.changes({k: current[k] for k in after}, after)
    if not changed:
        return _agent(current)
    try:
        async with savepoint():
            await ctx.scope.execute(
                """UPDATE agent SET name = $2, description = $3, status = $4, scim_external_id = $5, scim_display_name = $6,
                          scim_agent_type = $7, scim_active = $8, updated_at = clock_timestamp()
                   WHERE org_id = {org} AND id = $1""",
                current["id"], *after.values(),
            )
    except asyncpg.UniqueViolationError:
        raise UniquenessException(detail="Another agent of this organization has this name.") from None
    await audit.record(ctx, Action.AGENT_UPDATED, target=("agent", current["id"], name), before=before, after={**changed, "via": "scim"})
    return _agent(await storage._agent(current["id"], lock=False))


async def _delete_agent(storage: OrgStorage, resource_id: str, expected_version: str | None) -> None:
    ctx = storage.ctx  # ``_agent`` refuses a token without agents
    current = await storage._agent(_key(resource_id), lock=True)
    if expected_version is not None and expected_version != _agent(current).meta.version:
        raise PreconditionFailedException()
    # The count is exact: the row lock taken when the agent was read (first by the handler's read)
    # makes a workflow being created for it wait for this transaction, or this one wait for it.
    if current["workflows"]:
        raise ConflictException(detail=f"The agent runs {current['workflows']} workflow(s): reassign or delete them first.")
    await ctx.scope.execute("DELETE FROM agent WHERE org_id = {org} AND id = $1", current["id"])  # its tokens are revoked (trigger)
    await audit.record(ctx, Action.AGENT_DELETED, target=("agent", current["id"], current["name"]),
                       before={"name": current["name"], "status": current["status"], "via": "scim"})
