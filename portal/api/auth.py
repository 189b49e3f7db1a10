"""Bearer tokens for ``/api/v1/orgs/{slug}/…``: the API's ``OrgContextMiddleware``.

Only ``Authorization: Bearer <token>`` counts; cookies are ignored on the API (a browser session
alone is a 401), so there is no ambient credential and no CSRF surface. One statement
(``enter_token``) finds the token by its hash, enters its org and reads its role, its custom
role's permissions and its creator's membership, locking them in ``enter_org``'s order for
unsafe requests. Then, in Python:

* unknown, revoked, expired → 401 with a Bearer challenge; a token of another org → 404, the
  same as an org that does not exist;
* suspended (its creator could no longer grant its role: removed, demoted, or without
  ``members.manage``) → 401;
* an agent's token: suspended while its agent is paused, or its creator lacks
  ``resources.manage`` (401); it carries ``agent.self`` alone (``portal.api.agent``);
* the route's permission missing from the token's role → 403.

The handler then runs in the same transaction, exactly like a page; audit events name the token
and its creator.
"""

from __future__ import annotations

import re

from litestar.types import Receive, Scope, Send

from portal.web.problems import Unauthorized
from portal.api.limits import count_call
from portal.config import get_settings
from portal.web.fairshare import TOKEN_MESSAGE, within_share
from portal.api.tokens import hash_token
from portal.db import engine as db
from portal.errors import Forbidden, NotFound
from portal.tenancy.context import SLUG_SHAPE, Org, OrgContext, OrgContextMiddleware, client_ip
from portal.tenancy.permissions import BUILT_IN_CHOICES, MATRIX, Perm, Role, RoleChoice, custom_permissions
from portal.tenancy.scope import TenantScope

_ENTER = "SELECT * FROM enter_token($1, $2, $3)"
_BEARER = re.compile(r"^Bearer[ \t]+(prt_[A-Za-z0-9_-]{20,100})[ \t]*$", re.IGNORECASE)
STATUS_MESSAGES = {
    "unknown": "That token is not valid.",
    "revoked": "That token was revoked.",
    "expired": "That token has expired.",
    "suspended": "That token is suspended: the person who created it can no longer grant its role.",
    "paused": "That agent is paused: its tokens work again once it is resumed.",
    "agent_suspended": "That agent token is suspended: the person who created it can no longer manage resources.",
}
AGENT_ROLE = "agent"  # api_token.role of an agent's token
SCIM_ROLE = "scim"  # … and of a SCIM token


def bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            match = _BEARER.match(value.decode("latin-1"))
            return match.group(1) if match else None
    return None


def _perms(role: str, stored: list[str] | None) -> frozenset[Perm]:
    return custom_permissions(stored) if role == Role.CUSTOM else MATRIX[Role(role)]


async def enter_token(scope: Scope, perm: Perm, *, lock: bool) -> OrgContext:
    token = bearer(scope)
    if token is None:
        raise Unauthorized()
    slug = scope["path_params"]["slug"]
    if not SLUG_SHAPE.match(slug):
        raise NotFound()
    row = await db.current_connection().fetchrow(_ENTER, slug, scope["state"].get(HASH_KEY) or hash_token(token), lock)
    status = row["status"]
    if status == "other_org":
        raise NotFound()
    if status != "ok":
        raise Unauthorized(STATUS_MESSAGES[status])
    creator = _perms(row["creator_role"], row["creator_permissions"]) if row["creator_role"] else frozenset()
    if row["role"] == SCIM_ROLE:  # the org's identity provider: an integration of the org, not of its creator
        perms: frozenset[Perm] = frozenset({Perm.SCIM})
        role, role_name, label = Role.CUSTOM, "SCIM", f"SCIM: {row['token_name']}"
    elif row["role"] == AGENT_ROLE:
        if row["agent_status"] != "active":
            raise Unauthorized(STATUS_MESSAGES["paused"])
        if Perm.MANAGE_RESOURCES not in creator:
            raise Unauthorized(STATUS_MESSAGES["agent_suspended"])
        perms = frozenset({Perm.AGENT})
        role, role_name, label = Role.CUSTOM, "Agent", f"Agent “{row['agent_name']}” (token “{row['token_name']}”)"
    else:
        perms = _perms(row["role"], row["permissions"])
        held = RoleChoice.custom(row["custom_role_id"], row["role_name"], row["permissions"]) if row["role"] == Role.CUSTOM else BUILT_IN_CHOICES[Role(row["role"])]
        if Perm.MANAGE_MEMBERS not in creator or not held.within(creator):
            raise Unauthorized(STATUS_MESSAGES["suspended"])
        role, role_name, label = Role(row["role"]), row["role_name"], f"API token “{row['token_name']}”"
    if perm not in perms:
        raise Forbidden(
            "An agent's token reaches only its own agent." if row["agent_id"]
            else "A SCIM token reaches only the SCIM service." if row["role"] == SCIM_ROLE
            else "This token's role doesn't allow that."
        )
    return OrgContext(
        org=Org(row["org_id"], row["slug"], row["name"]),
        membership_id=row["token_id"],  # a token is no membership; nothing compares the two
        role=role,  # an agent's token: CUSTOM, named "Agent", with ``agent.self`` alone
        perms=perms,
        custom_role_id=row["custom_role_id"],
        role_name=role_name,
        user_id=row["creator_id"],
        user_email=row["creator_email"],
        user_name="",
        ip=client_ip(scope),
        scope=TenantScope(row["org_id"]),
        permission=perm,
        token_id=row["token_id"],
        actor_label=label,
        agent_id=row["agent_id"],
    )


HASH_KEY = "portal.api.token_hash"


class TokenContextMiddleware(OrgContextMiddleware):
    """``OrgContextMiddleware`` with the bearer token as the principal, each call counted first
    (``portal.api.limits.count_call``, before the request's transaction) and at most
    ``PER_PRINCIPAL_CONCURRENCY`` of one token's calls in flight per process."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer(scope) if scope["type"] == "http" else None
        if token is None:
            await super().__call__(scope, receive, send)
            return
        scope["state"][HASH_KEY] = token_hash = hash_token(token)
        limit = get_settings().per_principal_concurrency  # a token's calls in flight, like an account's requests
        await within_share(f"token:{token_hash}", limit, TOKEN_MESSAGE, self._counted, scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        await count_call(scope["state"][HASH_KEY])
        await super().__call__(scope, receive, send)

    async def enter(self, scope: Scope, perm: Perm, *, lock: bool, page: bool) -> OrgContext:
        return await enter_token(scope, perm, lock=lock)
