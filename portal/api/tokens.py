"""Org API tokens: issued with a role and an expiry, shown once, stored as a SHA-256 hash only,
listed by prefix, revoked. Managed by whoever manages members (the owner among built-in roles),
within their own permissions like any grant (``portal.roles.service.resolve_choice``).

The suspension rule: a token acts only while its creator could still grant its role, i.e. the
creator is still a member holding ``members.manage`` and every permission of the token's role
(``portal.api.auth``). Demote or remove the creator and their tokens stop, on the very next call;
give the right back and they work again (until they expire or are revoked).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any
from uuid import UUID

from portal import clock
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.errors import Conflict, Invalid, NotFound
from portal.resources import common
from portal.roles import service as roles
from portal.roles.service import role_fields
from portal.tenancy.context import OrgContext

PREFIX = "prt_"
DEFAULT_DAYS = 90
MAX_DAYS = 365
SHOWN_PREFIX = 12  # characters of the token a list shows ("prt_" and 8 more)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """``prt_`` and 43 URL-safe characters: 256 random bits."""
    return PREFIX + secrets.token_urlsafe(32)


def _days(raw: Any, errors: common.FormErrors) -> int:
    text = str(raw or "").strip() or str(DEFAULT_DAYS)
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_DAYS:  # ASCII digits only: "²" is a digit too
        errors["expires_in_days"] = f"Choose a lifetime from 1 to {MAX_DAYS} days."
        return DEFAULT_DAYS
    return int(text)


async def create_token(ctx: OrgContext, form: Any) -> tuple[UUID, str]:
    """A new token (its id, and the token itself: shown once, never stored)."""
    errors = common.FormErrors()
    name = common.text(form, "name", errors, label="token's name", max_len=common.NAME_MAX)
    days = _days(form.get("expires_in_days"), errors)
    try:
        choice = await roles.resolve_choice(ctx, str(form.get("role", "")))
    except Invalid as exc:
        errors.update(exc.field_errors)
        choice = None
    errors.raise_if_any()
    assert choice is not None
    token = new_token()
    now = clock.now()
    token_id = await ctx.scope.fetchval(
        """INSERT INTO api_token (org_id, name, prefix, token_hash, role, custom_role_id, created_by, created_by_email,
                                  created_at, expires_at)
           VALUES ({org}, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
        name, token[:SHOWN_PREFIX], hash_token(token), choice.role.value, choice.custom_role_id, ctx.user_id,
        ctx.user_email, now, now + timedelta(days=days),
    )
    await audit.record(
        ctx, Action.API_TOKEN_CREATED, target=("api_token", token_id, name),
        after={"name": name, **role_fields(choice), "expires_in_days": days, "prefix": token[:SHOWN_PREFIX]},
    )
    return token_id, token


_LIST = """SELECT t.id, t.name, t.prefix, t.role, t.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
                  t.created_by_email, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
           FROM api_token t LEFT JOIN org_role r ON r.org_id = {org} AND r.id = t.custom_role_id
           WHERE t.org_id = {org}"""
SHOWN = 200


async def list_tokens(ctx: OrgContext) -> list[dict]:
    """The org's tokens, live ones first, newest first (at most ``SHOWN``)."""
    now = clock.now()
    rows = await ctx.scope.fetch(_LIST + " ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC, t.id DESC LIMIT $1", SHOWN)
    out = []
    for row in rows:
        token = dict(row)
        token["state"] = "revoked" if row["revoked_at"] else "expired" if row["expires_at"] <= now else "active"
        token["manageable"] = roles.of_row(token).within(ctx.perms)
        out.append(token)
    return out


async def revoke_token(ctx: OrgContext, token_id: UUID) -> str:
    row = await ctx.scope.fetchrow(_LIST + " AND t.id = $1 FOR UPDATE OF t", token_id)
    if row is None:
        raise NotFound()
    if row["revoked_at"] is not None:
        raise Conflict(f"The token “{row['name']}” was already revoked.")
    held = roles.of_row(row)
    roles.require_within(ctx, held, "revoke this token")
    await ctx.scope.execute(
        "UPDATE api_token SET revoked_at = $2, revoked_by = $3 WHERE org_id = {org} AND id = $1", token_id, clock.now(), ctx.user_id
    )
    await audit.record(ctx, Action.API_TOKEN_REVOKED, target=("api_token", token_id, row["name"]), before={"prefix": row["prefix"], **role_fields(held)})
    return row["name"]
