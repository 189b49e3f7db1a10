"""Membership lifecycle rules: listing, role change, removal, leaving, ownership transfer.

Concurrency (SPEC §2–§3, SECURITY 10–14). The org middleware already holds the actor's own
membership ``FOR SHARE`` for every unsafe request, so the actor's role cannot change or vanish
until this transaction ends: a concurrent demotion either waits for us, or committed before we
read the role and we were refused. On top of that, every function here locks the rows it changes
and re-checks its rules on the locked, current versions:

* role change and removal lock the target membership ``FOR UPDATE``;
* leave deletes the actor's own (already share-locked) row;
* transfer locks the organization row first, then the owner's and the new owner's memberships
  ``FOR UPDATE``, demotes the owner, then promotes the new one (the partial unique index
  ``membership_one_owner`` admits one owner at a time, so the order matters).

The organization row is locked ``FOR NO KEY UPDATE``: it serializes transfers exactly like
``FOR UPDATE`` (the two conflict with each other and with themselves), but it does not block the
``FOR KEY SHARE`` locks that foreign-key checks take when a concurrent request inserts a row of
the org (an audit event, say). With ``FOR UPDATE`` the owner's own concurrent role change would
wait for our org lock while we wait for its share lock on the owner's membership: a deadlock.
(If the org middleware already holds the org row in this mode, taking it again costs nothing.)

When PostgreSQL still resolves a lock cycle by aborting us (two requests of the same person that
both hold their membership ``FOR SHARE`` and both want it ``FOR UPDATE``), or a unique index
refuses a write, the request ends in ``ConcurrentChange`` (409) and nothing is written.

No Litestar here: functions take the ``OrgContext`` and raise domain errors.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from typing import Any, Awaitable, Callable
from uuid import UUID

import asyncpg

from portal.audit import service as audit
from portal.audit.actions import Action
from portal.db import engine as db
from portal.errors import Conflict, Forbidden, Invalid, NotFound
from portal.params import decode_cursor, encode_cursor, like_pattern, search_text
from portal.tenancy.context import OrgContext
from portal.roles import service as roles
from portal.roles.service import role_fields
from portal.tenancy.permissions import Perm, Role

log = logging.getLogger("portal.members")

PAGE_SIZE = 50
TRANSFER_CANDIDATES = 50

MEMBER_GONE = "That person is not a member of this organization (any more). Reload the page to see the current members."
CONCURRENT = (
    "Someone changed this organization's members at the same moment, so nothing was changed. "
    "Reload the page and try again."
)
OWNER_MUST_TRANSFER = "You are the owner: transfer ownership before leaving."
ROLE_CANNOT_LEAVE = "Your role doesn't include leaving on your own: ask someone who manages members to remove you."


class ConcurrentChange(Conflict):
    """A lock cycle or a unique index stopped the write; the transaction is already aborted."""

    def __init__(self, message: str = CONCURRENT):
        super().__init__(message)


# -- test seam ---------------------------------------------------------------------------------
# Tests install an async callable here to hold a request at a named point between its checks and
# its writes (or to fail there). It is None in production and costs one comparison.
checkpoint_hook: Callable[[str], Awaitable[None]] | None = None


async def _checkpoint(name: str) -> None:
    if checkpoint_hook is not None:
        await checkpoint_hook(name)


def race_safe(fn):
    """Lock cycles and unique violations become a 409, never a 500."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError, asyncpg.LockNotAvailableError):
            log.info("membership change refused: concurrent change (%s)", fn.__name__)
            raise ConcurrentChange() from None
        except asyncpg.UniqueViolationError:
            log.info("membership change refused: unique violation (%s)", fn.__name__)
            raise ConcurrentChange() from None

    return wrapper


def _require(ctx: OrgContext, perm: Perm) -> None:
    # The middleware checked this under the share lock; a second wall costs nothing.
    if not ctx.can(perm):
        raise Forbidden("Your role in this organization doesn't allow that.")


def _label(row: Any) -> str:
    return f"{row['name']} <{row['email']}>"


# -- reading -----------------------------------------------------------------------------------
# One statement per page: the page and the total, whatever the org's size.
#
# Without a search, the page is an index range scan of membership_org_created_id from the cursor
# (joined to the user by primary key) and the total is the org row's ``member_count``, kept exact
# by triggers on membership (migrations/…30t13…): counting would walk every membership of the org
# under both of the table's RLS policies. With a search, the org's memberships are matched once
# (emails are stored lower-case; names are compared lower-cased), and the total and the page both
# come from that one pass.
# A member's role comes with them: built-in, or custom with its name and permissions
# (``m.role, m.custom_role_id, r.name AS role_name, r.permissions AS role_permissions``). The org's
# custom roles come with the page too (the role menus offer them): a small table, read in the same
# statement.
_PAGE = """
SELECT t.total, t.custom_roles, p.*
FROM (SELECT (SELECT member_count FROM organization WHERE id = {org}) AS total,
             (SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                                        ORDER BY lower(r.name), r.id), '[]'::jsonb)
              FROM org_role r WHERE r.org_id = {org}) AS custom_roles) t
LEFT JOIN LATERAL (
    -- the page's memberships first, then their accounts: whatever plan the planner picks for
    -- the page (its row estimate under RLS is poor), it joins 51 accounts, not the whole tail
    SELECT m.id, m.user_id, m.role, m.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
           m.joined_at, m.suspended_at, m.scim_managed, u.name, u.email
    FROM (
        SELECT m.id, m.user_id, m.role, m.custom_role_id, m.created_at AS joined_at, m.suspended_at, m.scim_managed FROM membership m
        WHERE m.org_id = {org} AND %(cursor)s
        ORDER BY m.created_at %(dir)s, m.id %(dir)s
        LIMIT $1
    ) m JOIN app_user u ON u.id = m.user_id
    LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
    ORDER BY m.joined_at %(dir)s, m.id %(dir)s
) p ON true
"""
_SEARCH_PAGE = """
WITH hits AS MATERIALIZED (
    SELECT m.id, m.user_id, m.role, m.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
           m.created_at AS joined_at, m.suspended_at, m.scim_managed, u.name, u.email
    FROM membership m JOIN app_user u ON u.id = m.user_id
    LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
    WHERE m.org_id = {org} AND (u.email LIKE $2 OR lower(u.name) LIKE $2)
)
SELECT t.total, t.custom_roles, p.*
FROM (SELECT count(*) AS total,
             (SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'name', r.name, 'permissions', r.permissions)
                                        ORDER BY lower(r.name), r.id), '[]'::jsonb)
              FROM org_role r WHERE r.org_id = {org}) AS custom_roles
      FROM hits) t
LEFT JOIN LATERAL (
    SELECT * FROM hits m WHERE %(cursor)s ORDER BY m.joined_at %(dir)s, m.id %(dir)s LIMIT $1
) p ON true
"""
_GET = """SELECT m.id, m.user_id, m.role, m.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
                 m.created_at AS joined_at, m.suspended_at, m.scim_managed, u.name, u.email
          FROM membership m JOIN app_user u ON u.id = m.user_id
          LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id
          WHERE m.org_id = {org} AND m.id = $1"""
_LOCK = _GET + " FOR UPDATE OF m"


async def list_members(
    ctx: OrgContext, *, q: str = "", after: str | None = None, before: str | None = None, page_size: int = PAGE_SIZE
) -> dict:
    """One page of members in joined order, optionally filtered by part of a name or email."""
    q = search_text(q)
    forward = decode_cursor(after, datetime, UUID)
    backward = None if forward else decode_cursor(before, datetime, UUID)
    cursor = forward or backward
    args: list[Any] = [page_size + 1]
    if q:
        args.append(like_pattern(q.lower()))
    column = "m.joined_at" if q else "m.created_at"
    condition = "true"
    if cursor:
        args += list(cursor)
        condition = f"({column}, m.id) {'>' if forward else '<'} (${len(args) - 1}, ${len(args)})"
    template = _SEARCH_PAGE if q else _PAGE
    sql = template % {"cursor": condition, "dir": "DESC" if backward else "ASC"}
    result = await ctx.scope.fetch(sql, *args)
    total = result[0]["total"]
    if total is None:  # the org was deleted since this request resolved it
        raise NotFound()
    rows = [{k: v for k, v in r.items() if k not in ("total", "custom_roles")} for r in result if r["id"] is not None]
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backward:
        rows.reverse()
    next_cursor = prev_cursor = None
    if rows:
        first = encode_cursor(rows[0]["joined_at"], rows[0]["id"])
        last = encode_cursor(rows[-1]["joined_at"], rows[-1]["id"])
        if backward:
            prev_cursor = first if more else None
            next_cursor = last
        else:
            next_cursor = last if more else None
            prev_cursor = first if forward else None
    return {
        "members": with_role_keys(ctx, rows),
        "role_choices": roles.menu(ctx, result[0]["custom_roles"]),
        "total": total,
        "q": q,
        "next_cursor": next_cursor,
        "prev_cursor": prev_cursor,
        "paged": bool(cursor),
        "can_manage": ctx.can(Perm.MANAGE_MEMBERS),
    }


def with_role_keys(ctx: OrgContext, rows: list[dict]) -> list[dict]:
    """Each row's ``role_key`` (what its role menu has selected) and ``manageable`` (whether
    ``ctx`` may change or remove them at all: never beyond ``ctx``'s own permissions). Worked out
    once per distinct role on the page, not per row."""
    seen: dict[Any, tuple[str, bool]] = {}
    for row in rows:
        role = row["custom_role_id"] or row["role"]
        found = seen.get(role)
        if found is None:
            held = roles.of_row(row)
            found = seen[role] = (held.key, held.within(ctx.perms))
        row["role_key"], row["manageable"] = found
    return rows


async def row_context(ctx: OrgContext, member: dict) -> dict:
    """What one member row needs when drawn alone (after an htmx role change or refusal)."""
    return {"m": with_role_keys(ctx, [member])[0], "role_choices": [(c.key, c.label) for c in await roles.choices(ctx)]}


async def get_member(ctx: OrgContext, member_id: UUID) -> dict | None:
    row = await ctx.scope.fetchrow(_GET, member_id)
    return dict(row) if row else None


async def removal_preview(ctx: OrgContext, member_id: UUID) -> dict:
    """The member a removal would affect, with the same refusals as the removal itself."""
    _require(ctx, Perm.MANAGE_MEMBERS)
    member = await get_member(ctx, member_id)
    if member is None:
        raise NotFound()
    _check_target(ctx, member, "remove")
    roles.require_within(ctx, roles.of_row(member), "remove them")
    return member


async def transfer_candidates(ctx: OrgContext, q: str = "", selected: UUID | None = None) -> dict:
    """Members who could become the owner, alphabetically; at most ``TRANSFER_CANDIDATES``; the
    ``selected`` member first if the search left them out."""
    q = search_text(q)
    args: list[Any] = []
    sql = (
        "SELECT m.id, m.role, m.custom_role_id, r.name AS role_name, u.name, u.email "
        "FROM membership m JOIN app_user u ON u.id = m.user_id "
        "LEFT JOIN org_role r ON r.org_id = {org} AND r.id = m.custom_role_id "
        "WHERE m.org_id = {org} AND m.role <> 'owner' AND m.suspended_at IS NULL"
    )
    if q:
        args.append(like_pattern(q.lower()))
        sql += " AND (u.email LIKE $1 OR lower(u.name) LIKE $1)"
    args.append(TRANSFER_CANDIDATES + 1)
    sql += f" ORDER BY lower(u.name), u.email, m.id LIMIT ${len(args)}"
    rows = [dict(r) for r in await ctx.scope.fetch(sql, *args)]
    more = len(rows) > TRANSFER_CANDIDATES
    rows = rows[:TRANSFER_CANDIDATES]
    chosen = None
    if selected is not None:
        chosen = next((r for r in rows if r["id"] == selected), None)
        if chosen is None:
            member = await get_member(ctx, selected)
            if member is not None and member["role"] != Role.OWNER and member["suspended_at"] is None:
                chosen = member
                rows.insert(0, member)
    return {"candidates": rows, "more": more, "q": q, "selected": chosen["id"] if chosen else None}


# -- rules -------------------------------------------------------------------------------------
def _check_target(ctx: OrgContext, target: dict, action: str) -> None:
    # Yourself: your own membership, or for an API token the person who created it (a token's
    # ``membership_id`` is its own id, never a membership's).
    if target["id"] == ctx.membership_id or target["user_id"] == ctx.user_id:
        if action == "remove":
            raise Conflict("You can't remove yourself. To hand the organization over, transfer ownership.")
        raise Conflict("You can't change your own role. To hand the organization over, transfer ownership.")
    if target["role"] == Role.OWNER:
        if action == "remove":
            raise Conflict("The owner can't be removed. The owner must transfer ownership first.")
        raise Conflict("The owner's role can't be changed. The owner can transfer ownership instead.")


async def _lock_member(ctx: OrgContext, member_id: UUID, message: str | None = None) -> dict:
    row = await lock_membership(ctx.scope, member_id)
    if row is None:
        raise NotFound(message) if message else NotFound()
    return row


@race_safe
async def change_role(ctx: OrgContext, member_id: UUID, raw_role: str) -> tuple[dict, bool]:
    """Give a non-owner member another non-owner role. Returns (member after, changed?)."""
    _require(ctx, Perm.MANAGE_MEMBERS)
    # The chosen role first (an unknown one is a 422 whoever the target; a custom one is locked
    # FOR SHARE), then the target. Every writer of an org holds its org row before any of these
    # locks (enter_org), so writes of one org never meet in another order.
    choice = await roles.resolve_choice(ctx, raw_role)
    target = await _lock_member(ctx, member_id)
    _check_target(ctx, target, "role")
    held = roles.of_row(target)
    roles.require_within(ctx, held, "change their role")
    if held.key == choice.key:
        return target, False
    await _checkpoint("role.locked")
    await ctx.scope.execute(
        "UPDATE membership SET role = $1, custom_role_id = $2 WHERE org_id = {org} AND id = $3",
        choice.role.value, choice.custom_role_id, member_id,
    )
    await audit.record(
        ctx,
        Action.MEMBER_ROLE_CHANGED,
        target=("membership", member_id, _label(target)),
        before=role_fields(held),
        after=role_fields(choice),
    )
    return {
        **target, "role": choice.role.value, "custom_role_id": choice.custom_role_id,
        "role_name": choice.label if choice.custom_role_id else None, "role_permissions": sorted(choice.perms - {Perm.VIEW}),
    }, True


async def lock_membership(scope: Any, member_id: UUID) -> dict | None:
    """A membership of the scope's org with its person and role, locked (None: there is none)."""
    row = await scope.fetchrow(_LOCK, member_id)
    return dict(row) if row else None


def who_left(member: dict) -> dict:
    """What the audit trail keeps of a membership that ends: its role, its person."""
    return {**role_fields(roles.of_row(member)), "user_id": str(member["user_id"]), "email": member["email"]}


async def _delete_membership(ctx: OrgContext, member: dict, action: Action) -> None:
    """Delete a (locked) membership and record who it was: a removal and a departure alike."""
    await ctx.scope.execute("DELETE FROM membership WHERE org_id = {org} AND id = $1", member["id"])
    await audit.record(ctx, action, target=("membership", member["id"], _label(member)), before=who_left(member))


@race_safe
async def remove_member(ctx: OrgContext, member_id: UUID) -> dict:
    """Remove a non-owner member. Their team memberships go with the row (ON DELETE CASCADE);
    their sessions lose the org on their next request (the membership is read every time)."""
    _require(ctx, Perm.MANAGE_MEMBERS)
    target = await _lock_member(ctx, member_id)
    _check_target(ctx, target, "remove")
    roles.require_within(ctx, roles.of_row(target), "remove them")
    await _checkpoint("remove.locked")
    await _delete_membership(ctx, target, Action.MEMBER_REMOVED)
    return target


@race_safe
async def leave(ctx: OrgContext) -> None:
    """The actor leaves the org. The owner can't: they must transfer ownership first."""
    if ctx.role == Role.OWNER:
        raise Conflict(OWNER_MUST_TRANSFER)
    _require(ctx, Perm.LEAVE)
    me = await _lock_member(ctx, ctx.membership_id)
    if me["role"] == Role.OWNER:  # cannot happen under the share lock; stated anyway
        raise Conflict(OWNER_MUST_TRANSFER)
    await _checkpoint("leave.locked")
    await _delete_membership(ctx, me, Action.MEMBER_LEFT)


# -- transfer ----------------------------------------------------------------------------------
@race_safe
async def transfer_ownership(ctx: OrgContext, member_id: UUID | None, password: str) -> dict:
    """Make another member the owner (``None``: no one was chosen); the current owner becomes
    ``member``. Atomic: both rows change in the request's transaction, or neither."""
    _require(ctx, Perm.MANAGE_ORG)
    errors = {}
    if member_id is None:
        errors["member_id"] = "Choose the member who will become the owner."
    if not password:
        errors["password"] = "Enter your password to confirm."
    if errors:
        raise Invalid("Please correct the highlighted fields.", field_errors=errors)
    if member_id == ctx.membership_id:
        raise Invalid("Please correct the highlighted fields.", field_errors={"member_id": "You already own this organization. Choose another member."})
    # Verified before this transaction opened (route opt ``reauthenticate``): argon2 is slow,
    # and no connection may wait for it.
    if ctx.password_ok is not True:
        raise Invalid("That password isn't right.", field_errors={"password": "That password isn't right."})

    conn = db.current_connection()
    await conn.execute("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", ctx.org.id)
    await _checkpoint("transfer.org_locked")
    me = await _lock_member(ctx, ctx.membership_id)
    if me["role"] != Role.OWNER:
        raise Forbidden("You are no longer the owner of this organization.")
    target = await _lock_member(ctx, member_id, MEMBER_GONE)
    if target["suspended_at"] is not None:
        raise Conflict(f"{target['name']} is suspended by your identity provider: reactivate them there first.")
    await _checkpoint("transfer.locked")
    # Demote first: membership_one_owner admits one owner at a time.
    await ctx.scope.execute("UPDATE membership SET role = 'member' WHERE org_id = {org} AND id = $1", me["id"])
    await _checkpoint("transfer.demoted")
    await ctx.scope.execute(
        "UPDATE membership SET role = 'owner', custom_role_id = NULL WHERE org_id = {org} AND id = $1", member_id
    )
    await audit.record(
        ctx,
        Action.ORG_OWNERSHIP_TRANSFERRED,
        target=("membership", member_id, _label(target)),
        before={"owner": me["email"], "owner_membership_id": str(me["id"]), "new_owner_role": target["role"],
                **({"new_owner_role_name": target["role_name"]} if target["custom_role_id"] else {})},
        after={"owner": target["email"], "owner_membership_id": str(member_id), "previous_owner_role": Role.MEMBER.value},
    )
    return target
