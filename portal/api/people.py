"""``/api/v1/orgs/{slug}/members`` and ``…/invites`` (SPEC §11): the members page's list, role
change and removal, and the invites page's list, create, resend and revoke, as JSON.

Every rule is the pages' own (``portal.members.service``, ``portal.invites.service``): the same
permissions, the same refusals (the owner is never demoted or removed: 409; a member or invite
whose role goes beyond the token's permissions: 403), the same audit events (naming the token).

* ``GET /members``: a keyset page in joined order (``limit`` ≤ 200, ``after``, ``q``) and the
  ``next`` page's URL;
* ``GET /members/{id}``: with ``ETag`` (a version of the member's role);
* ``PATCH /members/{id}``: ``{"role": …}``, a built-in role's name or a custom role's id;
  ``If-Match`` → 412 on a stale version;
* ``DELETE /members/{id}``: 204;
* ``GET /invites``: pending invites, newest first, a keyset page at a time;
* ``POST /invites``: 201; the link is emailed once the request has committed, exactly as the page
  does; ``Idempotency-Key`` honoured (a retry sends nothing);
* ``POST /invites/{id}/resend``: a new link (and a new invite id) replaces the old one;
* ``DELETE /invites/{id}``: revoke, 204.

No response ever carries an invite's token or link: it lives in the email alone.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import Meta

from portal.api import common, limits
from portal.api.resource import IdempotencyKey, Limit
from portal.errors import NotFound
from portal.invites import service as invites
from portal.members import service as members
from portal.params import parse_id, search_text
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm, Role
from portal.web.problems import documented

VIEW = {"permission": Perm.VIEW}  # the members page's
MANAGE = {"permission": Perm.MANAGE_MEMBERS}  # role change, removal, and every invite page

RoleName = Literal["owner", "billing_admin", "compliance_officer", "member", "custom"]
RoleKey = Annotated[str, Meta(
    min_length=1, max_length=100,
    description="A built-in role (member, billing_admin, compliance_officer) or the id of one of the organization's custom roles",
)]
Email = Annotated[str, Meta(min_length=1, max_length=320, description="The address the invite is emailed to")]


# -- members ---------------------------------------------------------------------------------------


class Member(msgspec.Struct):
    """A member of the organization: ``id`` is the membership's (the one the member paths take)."""

    id: UUID
    user_id: UUID
    name: str
    email: str
    role: RoleName  # a built-in role, or "custom" (then ``custom_role_id`` and ``custom_role_name``)
    custom_role_id: UUID | None
    custom_role_name: str | None
    joined_at: datetime


class MemberPage(msgspec.Struct):
    """A page of members; ``next`` is the next page's URL, or null on the last page."""

    items: list[Member]
    total: int  # members matching ``q`` (all of them without)
    next: str | None


class MemberUpdate(msgspec.Struct):
    role: RoleKey


def member(row: Any) -> Member:
    custom = row["role"] == Role.CUSTOM
    return Member(
        row["id"], row["user_id"], row["name"], row["email"], row["role"],
        row["custom_role_id"] if custom else None, row["role_name"] if custom else None, row["joined_at"],
    )


def member_etag(row: Any) -> str:
    """A membership's version: memberships have no ``updated_at``, and their role is all that changes."""
    version = f"{row['id']}:{row['role']}:{row['custom_role_id']}"
    return '"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'


async def _member(org: OrgContext, member_id: str) -> dict:
    row = await members.get_member(org, parse_id(member_id))
    if row is None:
        raise NotFound()
    return row


@get("/members", name="api.members.list", opt=VIEW, responses=documented())
async def member_list(
    request: Request, org: NamedDependency[OrgContext], limit: Limit = common.DEFAULT_LIMIT,
    after: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
) -> MemberPage:
    """The organization's members in the order they joined, a page at a time; ``q`` searches names and emails."""
    text = search_text(q)
    data = await members.list_members(org, q=text, after=after, page_size=limit)
    return MemberPage([member(r) for r in data["members"]], data["total"], common.next_link(request, data["next_cursor"], limit, q=text))


@get("/members/{member_id:str}", name="api.members.get", opt=VIEW, responses=documented())
async def member_get(org: NamedDependency[OrgContext], member_id: FromPath[str]) -> Response[Member]:
    """One member, with the version of their role in ``ETag``."""
    row = await _member(org, member_id)
    return Response(member(row), headers={"ETag": member_etag(row)})


@patch("/members/{member_id:str}", name="api.members.update", opt=MANAGE, responses=documented(409, 412, 422))
async def member_update(
    request: Request, org: NamedDependency[OrgContext], member_id: FromPath[str], data: JSONBody[MemberUpdate]
) -> Response[Member]:
    """Give a member another role (never the owner's: ownership is transferred on the settings
    page; nor to the owner: 409). With ``If-Match``, only if their role is still the version it names."""
    current = await _member(org, member_id)
    wanted = request.headers.get("if-match")
    if wanted is not None and wanted.strip() not in ("*", member_etag(current)):
        raise common.PreconditionFailed("The member's role changed since you read it: read it again, then apply your change.")
    await members.change_role(org, current["id"], data.role)
    row = await _member(org, member_id)
    return Response(member(row), headers={"ETag": member_etag(row)})


@delete("/members/{member_id:str}", name="api.members.delete", opt=MANAGE, status_code=204, responses=documented(409))
async def member_remove(org: NamedDependency[OrgContext], member_id: FromPath[str]) -> None:
    """Remove a member from the organization (never the owner: 409). Their team memberships go too."""
    await members.remove_member(org, parse_id(member_id))


# -- invites ---------------------------------------------------------------------------------------


class Invite(msgspec.Struct):
    """A pending invite (its link is in the email alone, never here)."""

    id: UUID
    email: str
    role: RoleName  # a built-in role, or "custom" (then ``custom_role_id`` and ``custom_role_name``)
    custom_role_id: UUID | None
    custom_role_name: str | None
    status: Literal["sending", "retrying", "sent", "failed"]  # the email's delivery (from the outbox)
    send_error: str | None  # why it failed
    expired: bool  # a resend renews it
    created_at: datetime
    expires_at: datetime
    last_sent_at: datetime | None
    invited_by_email: str | None
    invited_by_name: str | None


class InvitePage(msgspec.Struct):
    """A page of pending invites, newest first; ``next`` is the next page's URL, or null on the last page."""

    items: list[Invite]
    next: str | None


class InviteCreate(msgspec.Struct):
    email: Email
    role: RoleKey


def invite(row: Any) -> Invite:
    custom = row["role"] == Role.CUSTOM
    return Invite(
        row["id"], row["email"], row["role"], row["custom_role_id"] if custom else None, row["role_name"] if custom else None,
        row["status"], row["send_error"], row["expired"], row["created_at"], row["expires_at"], row["last_sent_at"],
        row["inviter_email"], row["inviter_name"],
    )


async def _invite(org: OrgContext, invite_id: UUID) -> Invite:
    row = await invites.one_invite(org, invite_id)
    if row is None:  # cannot happen in the transaction that created it; stated anyway
        raise NotFound()
    return invite(row)


@get("/invites", name="api.invites.list", opt=MANAGE, responses=documented())
async def invite_list(
    request: Request, org: NamedDependency[OrgContext], limit: Limit = common.DEFAULT_LIMIT, after: FromQuery[str | None] = None
) -> InvitePage:
    """The organization's pending invites (expired ones included, until renewed or revoked), newest first, a page at a time."""
    rows, cursor = await invites.invite_page(org, after=after, limit=limit)
    return InvitePage([invite(r) for r in rows], common.next_link(request, cursor, limit))


@post("/invites", name="api.invites.create", opt=MANAGE, status_code=201, responses=documented(409, 422))
async def invite_create(
    request: Request, org: NamedDependency[OrgContext], data: JSONBody[InviteCreate], idempotency_key: IdempotencyKey = None
) -> Response[Invite]:
    """Invite someone with a role (not the owner's). The link is emailed to them once this call
    has committed; ``status`` follows the delivery. 422 for an address that is already a member's
    or has a pending invite, or when every seat is taken; 429 past the invite rate. With
    ``Idempotency-Key``, a retry of the same request invites (and emails) no one new."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    outgoing = await invites.create_invite(org, data.email, data.role)
    body = msgspec.json.encode(await _invite(org, outgoing.invite_id))
    await limits.remember(org, request, 201, body, {})
    return Response(body, status_code=201, media_type="application/json")  # type: ignore[return-value]


@post("/invites/{invite_id:str}/resend", name="api.invites.resend", opt=MANAGE, status_code=200, responses=documented(409, 422))
async def invite_resend(
    request: Request, org: NamedDependency[OrgContext], invite_id: FromPath[str], idempotency_key: IdempotencyKey = None
) -> Response[Invite]:
    """Email a new link: it replaces the invite with a new one (a new ``id``, a new expiry), and
    the previous link stops working. 409 if the invite was accepted, revoked or replaced;
    422 when it had expired and every seat is taken meanwhile; 429 past the invite rate. With
    ``Idempotency-Key``, a retry gets the first answer and replaces (and emails) nothing again."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    outgoing = await invites.resend_invite(org, parse_id(invite_id))
    body = msgspec.json.encode(await _invite(org, outgoing.invite_id))
    await limits.remember(org, request, 200, body, {})
    return Response(body, status_code=200, media_type="application/json")  # type: ignore[return-value]


@delete("/invites/{invite_id:str}", name="api.invites.delete", opt=MANAGE, status_code=204, responses=documented(409))
async def invite_revoke(org: NamedDependency[OrgContext], invite_id: FromPath[str]) -> None:
    """Revoke a pending invite: its link stops working. 409 if it was accepted, revoked or replaced already."""
    await invites.revoke_invite(org, parse_id(invite_id))


ROUTES = [member_list, member_get, member_update, member_remove, invite_list, invite_create, invite_resend, invite_revoke]
