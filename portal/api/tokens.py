"""API tokens: issued with a role (or to an agent, acting as it) and an expiry, shown once, stored
as a SHA-256 hash only, listed by prefix, revoked. Managed by whoever manages members (the owner among built-in roles),
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
from portal.resources.agents.service import AGENT_TOKENS, TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS, token_state
from portal.roles import service as roles
from portal.roles.service import role_fields
from portal.tenancy.context import OrgContext

PREFIX = "prt_"
DEFAULT_DAYS, MAX_DAYS = TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS
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


def _name_and_days(form: Any, errors: common.FormErrors) -> tuple[str, int]:
    return common.text(form, "name", errors, label="token's name", max_len=common.NAME_MAX), _days(form.get("expires_in_days"), errors)


async def _issue(ctx: OrgContext, name: str, days: int, role: str, *, custom_role_id: UUID | None = None,
                 agent_id: UUID | None = None, manages_agents: bool = False) -> tuple[UUID, str]:
    """Store a new token's hash; its id and the token itself (shown once, never stored)."""
    token = new_token()
    now = clock.now()
    token_id = await ctx.scope.fetchval(
        """INSERT INTO api_token (org_id, name, prefix, token_hash, role, custom_role_id, agent_id, created_by, created_by_email,
                                  created_at, expires_at, manages_agents)
           VALUES ({org}, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id""",
        name, token[:SHOWN_PREFIX], hash_token(token), role, custom_role_id, agent_id, ctx.user_id,
        ctx.user_email, now, now + timedelta(days=days), manages_agents,
    )
    return token_id, token


async def create_token(ctx: OrgContext, form: Any) -> tuple[UUID, str]:
    """A new org token with a role (its id, and the token itself: shown once, never stored)."""
    errors = common.FormErrors()
    name, days = _name_and_days(form, errors)
    try:
        choice = await roles.resolve_choice(ctx, str(form.get("role", "")))
    except Invalid as exc:
        errors.update(exc.field_errors)
        choice = None
    errors.raise_if_any()
    assert choice is not None
    token_id, token = await _issue(ctx, name, days, choice.role.value, custom_role_id=choice.custom_role_id)
    await audit.record(
        ctx, Action.API_TOKEN_CREATED, target=("api_token", token_id, name),
        after={"name": name, **role_fields(choice), "expires_in_days": days, "prefix": token[:SHOWN_PREFIX]},
    )
    return token_id, token


# The org's own tokens (with a role); an agent's tokens are listed on the agent's page.
_LIST = """SELECT t.id, t.name, t.prefix, t.role, t.custom_role_id, r.name AS role_name, r.permissions AS role_permissions,
                  t.created_by_email, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
           FROM api_token t LEFT JOIN org_role r ON r.org_id = {org} AND r.id = t.custom_role_id
           WHERE t.org_id = {org} AND t.role NOT IN ('agent', 'scim')"""
SHOWN = 200


async def list_tokens(ctx: OrgContext) -> list[dict]:
    """The org's tokens, live ones first, newest first (at most ``SHOWN``)."""
    now = clock.now()
    rows = await ctx.scope.fetch(_LIST + " ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC, t.id DESC LIMIT $1", SHOWN)
    out = []
    for row in rows:
        token = dict(row)
        token["state"] = token_state(row, now)
        token["manageable"] = roles.of_row(token).within(ctx.perms)
        out.append(token)
    return out


async def _revoke(ctx: OrgContext, row: Any) -> None:
    if row["revoked_at"] is not None:
        raise Conflict(f"The token “{row['name']}” was already revoked.")
    await ctx.scope.execute(
        "UPDATE api_token SET revoked_at = $2, revoked_by = $3 WHERE org_id = {org} AND id = $1", row["id"], clock.now(), ctx.user_id
    )


async def revoke_token(ctx: OrgContext, token_id: UUID) -> str:
    row = await ctx.scope.fetchrow(_LIST + " AND t.id = $1 FOR UPDATE OF t", token_id)
    if row is None:
        raise NotFound()
    held = roles.of_row(row)
    if row["revoked_at"] is None:
        roles.require_within(ctx, held, "revoke this token")
    await _revoke(ctx, row)
    await audit.record(ctx, Action.API_TOKEN_REVOKED, target=("api_token", token_id, row["name"]), before={"prefix": row["prefix"], **role_fields(held)})
    return row["name"]


# -- an agent's own tokens (SPEC §11): managed on the agent's page by who manages resources --------

async def create_agent_token(ctx: OrgContext, agent: Any, form: Any) -> tuple[UUID, str]:
    """A token that acts as ``agent`` (a row locked by the caller): its id and the token itself."""
    errors = common.FormErrors()
    name, days = _name_and_days(form, errors)
    errors.raise_if_any()
    token_id, token = await _issue(ctx, name, days, "agent", agent_id=agent["id"])
    await audit.record(
        ctx, Action.AGENT_TOKEN_CREATED, target=("agent", agent["id"], agent["name"]),
        after={"token_id": str(token_id), "name": name, "expires_in_days": days, "prefix": token[:SHOWN_PREFIX]},
    )
    return token_id, token


async def revoke_agent_token(ctx: OrgContext, agent: Any, token_id: UUID) -> str:
    row = await ctx.scope.fetchrow(AGENT_TOKENS + " AND t.id = $2 FOR UPDATE OF t", agent["id"], token_id)
    if row is None:
        raise NotFound()
    await _revoke(ctx, row)
    await audit.record(
        ctx, Action.AGENT_TOKEN_REVOKED, target=("agent", agent["id"], agent["name"]),
        before={"token_id": str(token_id), "name": row["name"], "prefix": row["prefix"]},
    )
    return row["name"]


# -- the org's SCIM tokens (SPEC §12): managed by the owner on /orgs/{slug}/scim ---------------------

_SCIM_LIST = """SELECT t.id, t.name, t.prefix, t.created_by_email, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
                       t.manages_agents
                FROM api_token t WHERE t.org_id = {org} AND t.role = 'scim'"""


async def create_scim_token(ctx: OrgContext, form: Any) -> tuple[UUID, str]:
    """A new SCIM token: Users and Groups, and the org's Agents too when the form says so (off by
    default: provisioning people must not bring the power to pause and delete agents)."""
    errors = common.FormErrors()
    name, days = _name_and_days(form, errors)
    manages_agents = form.get("manages_agents") == "1"
    errors.raise_if_any()
    token_id, token = await _issue(ctx, name, days, "scim", manages_agents=manages_agents)
    await audit.record(
        ctx, Action.SCIM_TOKEN_CREATED, target=("api_token", token_id, name),
        after={"name": name, "expires_in_days": days, "prefix": token[:SHOWN_PREFIX], "manages_agents": manages_agents},
    )
    return token_id, token


async def list_scim_tokens(ctx: OrgContext) -> list[dict]:
    now = clock.now()
    rows = await ctx.scope.fetch(_SCIM_LIST + " ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC, t.id DESC LIMIT $1", SHOWN)
    return [{**row, "state": token_state(row, now)} for row in rows]


async def revoke_scim_token(ctx: OrgContext, token_id: UUID) -> str:
    row = await ctx.scope.fetchrow(_SCIM_LIST + " AND t.id = $1 FOR UPDATE OF t", token_id)
    if row is None:
        raise NotFound()
    await _revoke(ctx, row)
    await audit.record(ctx, Action.SCIM_TOKEN_REVOKED, target=("api_token", token_id, row["name"]), before={"prefix": row["prefix"]})
    return row["name"]
