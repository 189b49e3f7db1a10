"""Invites: the owner's side (create, resend, revoke, list) and the invitee's (landing, accept).

Tokens are ``secrets.token_urlsafe(32)`` (256 random bits). Only their SHA-256 is stored in the
invite; the token itself lives in the email alone, sealed in the outbox until it is sent
(``portal.invites.delivery``). A dead invite — expired, revoked, accepted, replaced by a
resend, of a deleted org, or no invite at all — is one indistinguishable ``DeadInvite``.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from portal import clock, emails, humanize
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from portal import ratelimit
from portal.params import decode_cursor, encode_cursor
from portal.invites import delivery
from portal.mail import queue
from portal.tenancy import scope as tenancy
from portal.tenancy.context import OrgContext
from portal.roles import service as roles
from portal.roles.service import role_fields
from portal.tenancy.permissions import ROLE_LABELS, Role

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # exactly what token_urlsafe(32) produces
INVITES_PER_HOUR = 20  # per org, resends included: each one sends an email
PUBLIC_HITS = 60  # landing + accept requests per client and window
PUBLIC_WINDOW = timedelta(minutes=10)

PENDING = "accepted_at IS NULL AND revoked_at IS NULL AND superseded_at IS NULL"


class DeadInvite(NotFound):
    """Expired, revoked, used, superseded, of a deleted org, or never existed: one answer."""

    def __init__(self) -> None:
        super().__init__(
            "This invite is no longer valid. It may have expired, been revoked or replaced by a newer one, "
            "or already been used. Ask the person who invited you to send a new invite."
        )


class WrongAccount(Forbidden):
    """Signed in as someone other than the invited address; the invite stays usable."""

    def __init__(self, invite: dict[str, Any]):
        super().__init__(f"This invite is for {invite['email']}.")
        self.invite = invite


class Unverified(Forbidden):
    """The invited address is the account's, but the account hasn't confirmed it yet (SPEC §10):
    otherwise whoever saw the link could sign up with that address and join. The invite stays usable."""

    def __init__(self, invite: dict[str, Any]):
        super().__init__(f"Confirm that {invite['email']} is your address before accepting: open the link we emailed to it.")
        self.invite = invite


@dataclass(frozen=True)
class Outgoing:
    """An invite just written, its mail queued in the same transaction."""

    org_id: UUID
    invite_id: UUID
    email: str


@dataclass(frozen=True)
class Accepted:
    org_slug: str
    org_name: str
    role_label: str
    already_member: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


# -- the owner's side (inside the org request transaction) ---------------------------------------

async def _lock_org(ctx: OrgContext) -> None:
    """Serialize invite creation per org (seat limit, rate limit). NO KEY UPDATE does not block
    inserts that merely reference the org."""
    locked = await db.current_connection().fetchval("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", ctx.org.id)
    if locked is None:  # deleted meanwhile (or not visible to lock: then nothing below would be safe)
        raise NotFound()


async def _check_rate(ctx: OrgContext, now: datetime) -> None:
    row = await ctx.scope.fetchrow(
        "SELECT count(*) AS n, min(created_at) AS oldest FROM invite WHERE org_id = {org} AND created_at > $1",
        now - timedelta(hours=1),
    )
    if row["n"] >= INVITES_PER_HOUR:
        retry = (row["oldest"] + timedelta(hours=1) - now).total_seconds()
        raise TooManyRequests(
            f"This organization has sent {INVITES_PER_HOUR} invites in the last hour, the most we allow. "
            "Try again a little later.",
            retry_after=math.ceil(retry),
        )
    # And per person, across every org they manage: creating orgs is free, so a per-org limit
    # alone would let one account mail as many strangers as it has orgs (SPEC §9).
    limit = get_settings().invite_rate
    await ratelimit.hit(
        f"invites-by:{ctx.user_id}",
        limit=limit,
        window=timedelta(hours=1),
        message=f"You have sent {limit} invites in the last hour, across your organizations, the most we allow. "
        "Try again a little later.",
    )


async def seat_usage(ctx: OrgContext, now: datetime, *, with_roles: bool = False) -> dict[str, Any]:
    """Seats, members and live pending invites; ``with_roles``: also the org's custom roles (the
    invite form's role menu), in the same statement."""
    row = await ctx.scope.fetchrow(
        f"""SELECT (SELECT seat_limit FROM billing_settings WHERE org_id = {{org}}) AS seats,
                   (SELECT count(*) FROM membership WHERE org_id = {{org}}) AS members,
                   (SELECT count(*) FROM invite WHERE org_id = {{org}} AND {PENDING} AND expires_at > $1) AS pending"""
        + (f", {roles.CUSTOM_ROLES_JSON} AS custom_roles" if with_roles else ""),
        now,
    )
    return dict(row)


async def check_seats(ctx: OrgContext, now: datetime) -> None:
    usage = await seat_usage(ctx, now)
    if usage["seats"] is not None and usage["members"] + usage["pending"] >= usage["seats"]:
        raise Invalid(
            f"All {usage['seats']} seats are taken ({usage['members']} members, {usage['pending']} pending invites). "
            "Revoke a pending invite, or raise the seat limit in Billing, before inviting more people."
        )


async def _insert(
    ctx: OrgContext, email: str, role: str, custom_role_id: UUID | None, now: datetime
) -> tuple[UUID, datetime]:
    token, token_hash = new_token()
    row = await ctx.scope.fetchrow(
        """INSERT INTO invite (org_id, email, role, custom_role_id, token_hash, invited_by, created_at, expires_at)
           VALUES ({org}, $1, $2, $7, $3, $4, $5, $6) RETURNING id, expires_at""",
        email,
        role,
        token_hash,
        ctx.user_id,
        now,
        now + get_settings().invite_ttl,
        custom_role_id,
    )
    await delivery.queue_mail(ctx.scope, row["id"], token)  # the token's only copy, sealed in the outbox
    return row["id"], row["expires_at"]


async def create_invite(ctx: OrgContext, raw_email: str, raw_role: str) -> Outgoing:
    email = emails.canonical(raw_email)
    errors = {}
    try:
        emails.normalize(email)
    except ValueError as exc:
        errors["email"] = str(exc)
    choice = None
    if raw_role == Role.OWNER:
        errors["role"] = "Ownership can't be given by invite. Invite them, then transfer ownership in Settings."
    elif not raw_role:
        errors["role"] = "Choose a role."
    if errors:
        raise Invalid("Please correct the highlighted fields.", field_errors=errors)
    now = clock.now()
    await _lock_org(ctx)
    try:  # a custom role: locked FOR SHARE (after the org row, like every writer)
        choice = await roles.resolve_choice(ctx, raw_role)
    except Invalid as exc:
        raise Invalid("Please correct the highlighted fields.", field_errors={**errors, **exc.field_errors}) from None
    if await ctx.scope.fetchval(
        "SELECT 1 FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = {org} AND u.email = $1", email
    ):
        raise Invalid(
            "Please correct the highlighted fields.",
            field_errors={"email": f"{email} is already a member of {ctx.org.name}."},
        )
    pending = await ctx.scope.fetchrow(
        "SELECT i.id, i.expires_at, i.role, i.custom_role_id, r.name AS role_name, r.permissions AS role_permissions "
        "FROM invite i LEFT JOIN org_role r ON r.org_id = {org} AND r.id = i.custom_role_id "
        "WHERE i.org_id = {org} AND i.email = $1 "
        "AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.superseded_at IS NULL FOR UPDATE OF i",
        email,
    )
    if pending and pending["expires_at"] > now:
        raise Invalid(
            "Please correct the highlighted fields.",
            field_errors={"email": f"{email} already has a pending invite. Resend it from the list below if the email got lost."},
        )
    await _check_rate(ctx, now)
    await check_seats(ctx, now)
    if pending:  # expired: retire it, the new invite takes its place (as a revoke would: within one's permissions)
        roles.require_within(ctx, roles.of_row(pending), "replace their expired invite")
        await ctx.scope.execute("UPDATE invite SET superseded_at = $2 WHERE org_id = {org} AND id = $1", pending["id"], now)
        await queue.cancel(ctx.scope, pending["id"])
    invite_id, expires_at = await _insert(ctx, email, choice.role.value, choice.custom_role_id, now)
    if pending:
        await ctx.scope.execute("UPDATE invite SET replaced_by = $2 WHERE org_id = {org} AND id = $1", pending["id"], invite_id)
    await audit.record(
        ctx,
        Action.INVITE_CREATED,
        target=("invite", invite_id, email),
        before={"expired_invite_id": str(pending["id"])} if pending else None,
        after={"email": email, **role_fields(choice), "expires_at": expires_at.isoformat()},
    )
    return Outgoing(ctx.org.id, invite_id, email)


async def _pending_row(ctx: OrgContext, invite_id: UUID, *, lock: bool = False):
    row = await ctx.scope.fetchrow(
        "SELECT i.id, i.email, i.role, i.custom_role_id, r.name AS role_name, r.permissions AS role_permissions, "
        "i.expires_at, i.accepted_at, i.revoked_at, i.superseded_at FROM invite i "
        "LEFT JOIN org_role r ON r.org_id = {org} AND r.id = i.custom_role_id "
        "WHERE i.org_id = {org} AND i.id = $1" + (" FOR UPDATE OF i" if lock else ""),
        invite_id,
    )
    if row is None:
        raise NotFound()
    if row["accepted_at"] or row["revoked_at"] or row["superseded_at"]:
        what = "accepted" if row["accepted_at"] else "revoked" if row["revoked_at"] else "replaced by a newer invite"
        raise Conflict(f"The invite for {row['email']} was already {what}. Reload the page to see the current list.")
    return row


async def resend_invite(ctx: OrgContext, invite_id: UUID) -> Outgoing:
    """A new token for the same address and role; the old link dies with the old row."""
    now = clock.now()
    await _lock_org(ctx)
    old = await _pending_row(ctx, invite_id, lock=True)
    held = roles.of_row(old)
    roles.require_within(ctx, held, "resend this invite")
    await _check_rate(ctx, now)
    if old["expires_at"] <= now:  # an expired invite holds no seat until it is renewed
        await check_seats(ctx, now)
    await ctx.scope.execute("UPDATE invite SET superseded_at = $2 WHERE org_id = {org} AND id = $1", invite_id, now)
    await queue.cancel(ctx.scope, invite_id)  # its link dies: a mail of it still queued must not go out
    new_id, expires_at = await _insert(ctx, old["email"], old["role"], old["custom_role_id"], now)
    await ctx.scope.execute("UPDATE invite SET replaced_by = $2 WHERE org_id = {org} AND id = $1", invite_id, new_id)
    await audit.record(
        ctx,
        Action.INVITE_RESENT,
        target=("invite", new_id, old["email"]),
        before={"invite_id": str(invite_id), "expires_at": old["expires_at"].isoformat()},
        after={"invite_id": str(new_id), **role_fields(held), "expires_at": expires_at.isoformat()},
    )
    return Outgoing(ctx.org.id, new_id, old["email"])


async def revoke_invite(ctx: OrgContext, invite_id: UUID) -> str:
    row = await _pending_row(ctx, invite_id, lock=True)
    held = roles.of_row(row)
    roles.require_within(ctx, held, "revoke this invite")
    await ctx.scope.execute(
        "UPDATE invite SET revoked_at = $2, revoked_by = $3 WHERE org_id = {org} AND id = $1", invite_id, clock.now(), ctx.user_id
    )
    await queue.cancel(ctx.scope, invite_id)
    await audit.record(
        ctx, Action.INVITE_REVOKED, target=("invite", invite_id, row["email"]), before={"email": row["email"], **role_fields(held)}
    )
    return row["email"]



async def retry_mail(ctx: OrgContext, invite_id: UUID) -> str:
    """Put a pending invite's undelivered mail back in the outbox: the same link, sent again."""
    row = await _pending_row(ctx, invite_id, lock=True)
    roles.require_within(ctx, roles.of_row(row), "retry this invite's email")
    if row["expires_at"] <= clock.now():  # its link is dead: only a new one helps
        raise Conflict(f"The invite to {row['email']} has expired, so its link no longer works. Resend it for a new link.")
    mail_id = await ctx.scope.fetchval(
        "SELECT id FROM mail_outbox WHERE org_id = {org} AND ref_id = $1 ORDER BY created_at DESC LIMIT 1", invite_id
    )
    if mail_id is None or not await queue.retry(ctx.scope, mail_id):
        raise Conflict(f"The email to {row['email']} is not undelivered (any more). Reload the page to see where it stands.")
    await ctx.scope.execute("UPDATE invite SET send_error = NULL WHERE org_id = {org} AND id = $1", invite_id)
    return row["email"]


_LIST = """
SELECT i.id, i.email, i.role, i.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
       i.created_at, i.expires_at, i.last_sent_at, i.send_error, u.name AS inviter_name, u.email AS inviter_email,
       m.id AS mail_id, m.status AS mail_status, m.attempts AS mail_attempts, m.last_error AS mail_error,
       m.run_after AS mail_next_try, m.sent_at AS mail_sent_at
FROM invite i LEFT JOIN app_user u ON u.id = i.invited_by
LEFT JOIN org_role r ON r.org_id = {org} AND r.id = i.custom_role_id
-- its mail's delivery, from the outbox (the newest row: a retried dead letter is the same row)
LEFT JOIN LATERAL (
    SELECT o.id, o.status, o.attempts, o.last_error, o.run_after, o.sent_at FROM mail_outbox o
    WHERE o.org_id = {org} AND o.ref_id = i.id ORDER BY o.created_at DESC LIMIT 1
) m ON true
WHERE i.org_id = {org} AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.superseded_at IS NULL
"""


def _with_status(row: Any, now: datetime) -> dict[str, Any]:
    """The invite with its mail's delivery state: ``sending`` (queued, or being handed to the mail
    server), ``retrying`` (an attempt failed; another follows), ``sent``, or ``failed`` (given up:
    ``send_error`` says why, and the owner may try again)."""
    invite = dict(row)
    invite["expired"] = invite["expires_at"] <= now
    state = invite.pop("mail_status")
    if state == "sent":
        invite["status"], invite["last_sent_at"] = "sent", invite["mail_sent_at"]
    elif state in ("queued", "sending"):
        invite["status"] = "retrying" if invite["mail_attempts"] and invite["mail_error"] else "sending"
        invite["send_error"] = invite["mail_error"] if invite["status"] == "retrying" else None
    elif state == "dead":
        invite["status"], invite["send_error"] = "failed", invite["mail_error"] or "the mail could not be delivered"
    elif invite["send_error"]:  # no mail of its own (demo data)
        invite["status"] = "failed"
    else:
        invite["status"] = "sent" if invite["last_sent_at"] else "failed"
        invite["send_error"] = None if invite["last_sent_at"] else "no email was queued for this invite"
    return invite


async def list_invites(ctx: OrgContext) -> dict[str, Any]:
    now = clock.now()
    rows = await ctx.scope.fetch(_LIST + " ORDER BY i.created_at DESC, i.email LIMIT 1000")
    invites = [_with_status(r, now) for r in rows]
    for invite in invites:
        invite["manageable"] = roles.of_row(invite).within(ctx.perms)
    seats = await seat_usage(ctx, now, with_roles=True)
    return {
        "invites": invites,
        "role_choices": roles.menu(ctx, seats.pop("custom_roles")),
        "seats": seats,
        "any_failed": any(i["status"] == "failed" for i in invites),
        "ttl_text": humanize.duration(get_settings().invite_ttl),
    }


async def invite_page(ctx: OrgContext, *, after: str | None = None, limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
    """Pending invites newest first, a keyset page at a time (the JSON API): the page and the
    cursor of the next one (None on the last). A malformed cursor starts from the newest."""
    now = clock.now()
    cursor = decode_cursor(after, datetime, UUID)
    args: list[Any] = [limit + 1]
    sql = _LIST
    if cursor:
        args += list(cursor)
        sql += " AND (i.created_at, i.id) < ($2, $3)"
    rows = await ctx.scope.fetch(sql + " ORDER BY i.created_at DESC, i.id DESC LIMIT $1", *args)
    invites = [_with_status(r, now) for r in rows[:limit]]
    more = len(rows) > limit
    return invites, encode_cursor(invites[-1]["created_at"], invites[-1]["id"]) if more else None


async def one_invite(ctx: OrgContext, invite_id: UUID) -> dict[str, Any] | None:
    """A pending invite of this org for its list row; None once it is no longer pending."""
    row = await ctx.scope.fetchrow(_LIST + " AND i.id = $1", invite_id)
    if row is None:
        if not await ctx.scope.fetchval("SELECT 1 FROM invite WHERE org_id = {org} AND id = $1", invite_id):
            raise NotFound()
        return None
    invite = _with_status(row, clock.now())
    invite["manageable"] = roles.of_row(invite).within(ctx.perms)
    return invite


# -- the invitee's side (the org comes from the token) ------------------------------------------

_BY_TOKEN = """-- unscoped: found by its token hash under the invite_by_token RLS policy (LIMIT 2: see _find)
SELECT i.id, i.org_id, i.email, i.role, i.custom_role_id, r.name AS role_name, i.expires_at, i.accepted_at,
       i.revoked_at, i.superseded_at, o.name AS org_name, o.slug AS org_slug, u.name AS inviter_name,
       u.email AS inviter_email
FROM invite i
JOIN organization o ON o.id = i.org_id
LEFT JOIN app_user u ON u.id = i.invited_by
-- the role it grants: readable by its token alone (policy invite_role_by_token)
LEFT JOIN org_role r ON r.org_id = i.org_id AND r.id = i.custom_role_id
WHERE i.token_hash = $1
LIMIT 2
"""


async def _find(conn: Any, token: str, now: datetime) -> dict[str, Any]:
    """The live invite for ``token`` in the open transaction, or ``DeadInvite``."""
    if not TOKEN_RE.match(token):
        raise DeadInvite()
    token_hash = hash_token(token)
    await conn.execute("SELECT set_config('app.invite_hash', $1, true)", token_hash)
    rows = await conn.fetch(_BY_TOKEN, token_hash)
    # The hash is unique per org only: one that two orgs hold names no one invite.
    row = rows[0] if len(rows) == 1 else None
    if row is None or row["accepted_at"] or row["revoked_at"] or row["superseded_at"] or row["expires_at"] <= now:
        raise DeadInvite()
    invite = dict(row)
    invite["token_hash"] = token_hash
    invite["valid_for"] = humanize.remaining((invite["expires_at"] - now).total_seconds())
    return invite


async def check_public_rate(ip: str) -> None:
    await ratelimit.hit_client(
        "invite", ip,
        limit=PUBLIC_HITS,
        window=PUBLIC_WINDOW,
        message="Too many invite requests from your network. Wait a few minutes and open the link again.",
    )


_VERIFIED = "SELECT email_verified_at IS NOT NULL FROM app_user WHERE id = $1"


async def landing(token: str, viewer_id: UUID | None = None) -> dict[str, Any]:
    """What the landing page shows (and whether the signed-in viewer has a verified address);
    reads only (mail scanners open links)."""
    async with db.transaction() as conn:
        invite = await _find(conn, token, clock.now())
        invite["viewer_verified"] = bool(viewer_id and await conn.fetchval(_VERIFIED, viewer_id))
        return invite


async def accept(token: str, *, user_id: UUID, user_email: str, ip: str) -> Accepted:
    """Accept as the signed-in user: one conditional UPDATE decides, so concurrent accepts of one
    invite make exactly one membership; the losers see a dead invite."""
    now = clock.now()
    async with db.transaction(user_id=user_id) as conn:
        invite = await _find(conn, token, now)
        if invite["email"] != emails.canonical(user_email):
            raise WrongAccount(invite)
        if not await conn.fetchval(_VERIFIED, user_id):
            raise Unverified(invite)  # before anything is written; the transaction rolls back
        scope = await tenancy.enter(invite["org_id"])
        # The org row first, as every owner-side invite change takes it: org → invite →
        # membership (whose trigger updates the org's member count), never the other way round.
        await conn.execute("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", invite["org_id"])
        taken = await scope.fetchrow(
            f"""UPDATE invite SET accepted_at = $2, accepted_by = $3
                WHERE org_id = {{org}} AND token_hash = $1 AND {PENDING} AND expires_at > $2 AND email = $4
                RETURNING id, role, custom_role_id, email""",
            invite["token_hash"],
            now,
            user_id,
            invite["email"],
        )
        if taken is None:
            raise DeadInvite()
        joined = await scope.fetchval(
            """INSERT INTO membership (org_id, user_id, role, custom_role_id) VALUES ({org}, $1, $2, $3)
               ON CONFLICT (org_id, user_id) DO NOTHING RETURNING id""",
            user_id,
            taken["role"],
            taken["custom_role_id"],
        )
        role = {"role": taken["role"]}
        label = ROLE_LABELS.get(Role(taken["role"]), taken["role"])
        if taken["custom_role_id"] is not None:
            label = invite["role_name"]
            role = {"role": taken["role"], "custom_role_id": str(taken["custom_role_id"]), "role_name": label}
        await audit.record_as(
            scope, actor_id=user_id, actor_email=user_email, ip=ip, action=Action.INVITE_ACCEPTED,
            target=("invite", taken["id"], taken["email"]), after=role,
        )
        if joined is not None:
            await audit.record_as(
                scope, actor_id=user_id, actor_email=user_email, ip=ip, action=Action.MEMBER_JOINED,
                target=("membership", user_id, taken["email"]), after={**role, "invite_id": str(taken["id"])},
            )
    return Accepted(invite["org_slug"], invite["org_name"], label, already_member=joined is None)


# -- demo data ---------------------------------------------------------------------------------

async def demo_invite(scope: tenancy.TenantScope, owner_id: UUID, owner_email: str) -> None:
    """`portal demo`: one pending invite. Its token is thrown away unsent, so it says so; a resend
    from the invites page emails a working link."""
    now = clock.now()
    email = "farah@acme.example"
    invite_id = await scope.fetchval(
        """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, send_error)
           VALUES ({org}, $1, 'member', $2, $3, $4, $5, $6) RETURNING id""",
        email,
        new_token()[1],
        owner_id,
        now,
        now + get_settings().invite_ttl,
        "demo data: no email was sent",
    )
    await audit.record_as(
        scope, actor_id=owner_id, actor_email=owner_email, ip="127.0.0.1", action=Action.INVITE_CREATED,
        target=("invite", invite_id, email), after={"email": email, "role": "member"},
    )
