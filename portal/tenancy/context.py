"""Org context: `/orgs/{slug}/…` → the signed-in user's membership, inside one transaction.

``OrgContextMiddleware`` wraps every route under ``/orgs/{slug}``. For each request it:

1. opens the request's transaction (row-level security sees the signed-in user);
2. finds the org by slug and the user's membership in it — unknown org and non-member get the
   same 404;
3. sets the tenant for the rest of the transaction; for unsafe methods re-reads the membership
   ``FOR SHARE`` so a concurrent demotion or removal waits for this request to finish, or is seen
   by it (never acted on stale);
4. checks the permission the route declares (``opt={"permission": Perm.X}``) → 403 otherwise;
5. runs the handler inside the transaction, with the response held back, and commits only if the
   response is a success — so a 303 never reaches the browser before its write is durable, and
   an error response never leaves half a change behind.

Handlers get the result as the ``org`` dependency (``OrgContext``); they never see a raw slug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from portal.db import engine as db
from portal.errors import Forbidden, NotFound
from portal.tenancy.permissions import Perm, Role, allowed
from portal.tenancy.scope import TenantScope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Org:
    id: UUID
    slug: str
    name: str


@dataclass(frozen=True)
class OrgContext:
    org: Org
    membership_id: UUID
    role: Role
    user_id: UUID
    user_email: str
    user_name: str
    ip: str
    scope: TenantScope

    def can(self, perm: Perm | str) -> bool:
        return allowed(self.role, Perm(perm))


class _Rollback(Exception):
    pass


_RESOLVE = """
SELECT o.id AS org_id, o.slug, o.name, m.id AS membership_id, m.role
FROM organization o
JOIN membership m ON m.org_id = o.id AND m.user_id = $2
WHERE o.slug = $1
"""
# Under the tenant, lock the actor's membership against concurrent role change or removal.
# FOR KEY SHARE would not conflict with an UPDATE of the role; FOR SHARE does.
_LOCK = "SELECT role FROM membership WHERE id = $1 FOR SHARE"


def required_permission(route_handler: Any) -> Perm:
    perm = route_handler.opt.get("permission")
    if perm is None and route_handler.http_methods == {"OPTIONS"}:
        return Perm.VIEW  # Litestar's automatic OPTIONS answer (204 + Allow): members only
    if not isinstance(perm, Perm):
        raise RuntimeError(f"org route {route_handler} declares no permission")
    return perm


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


async def resolve(slug: str, user: Any, perm: Perm, *, lock: bool, ip: str = "") -> OrgContext:
    """Resolve the org for the open transaction; raise NotFound / Forbidden."""
    if len(slug) > 40:
        raise NotFound()
    conn = db.current_connection()
    row = await conn.fetchrow(_RESOLVE, slug, user.id)
    if row is None:
        raise NotFound()
    await db.set_tenant(row["org_id"])
    role = row["role"]
    if lock:
        role = await conn.fetchval(_LOCK, row["membership_id"])
        if role is None:  # removed while we waited for the lock
            raise NotFound()
    if not allowed(role, perm):
        raise Forbidden("Your role in this organization doesn't allow that.")
    return OrgContext(
        org=Org(row["org_id"], row["slug"], row["name"]),
        membership_id=row["membership_id"],
        role=Role(role),
        user_id=user.id,
        user_email=user.email,
        user_name=user.name,
        ip=ip,
        scope=TenantScope(row["org_id"]),
    )


class OrgContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = scope["route_handler"]
        perm = required_permission(handler)
        user = scope.get("user")
        if user is None:  # the session middleware redirects first; this is a second wall
            raise NotFound()
        streaming = bool(handler.opt.get("streaming"))
        method = scope["method"]
        held: list[Message] = []
        status: list[int] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            if streaming:
                await send(message)
            else:
                held.append(message)

        try:
            async with db.transaction(user_id=user.id):
                ctx = await resolve(
                    scope["path_params"]["slug"], user, perm, lock=method not in SAFE_METHODS, ip=client_ip(scope)
                )
                scope["state"]["org"] = ctx
                await self.app(scope, receive, hold)
                if not streaming and (not status or status[0] >= 400):
                    raise _Rollback
        except _Rollback:
            pass
        for message in held:
            await send(message)


def provide_org(request: Request) -> OrgContext:
    """The ``org`` dependency of org routes."""
    return request.scope["state"]["org"]


_USER_ORGS = """
SELECT o.slug, o.name, m.role, m.created_at AS joined_at
FROM membership m JOIN organization o ON o.id = m.org_id
WHERE m.user_id = $1
ORDER BY lower(o.name), o.slug
"""


async def user_orgs(user_id: UUID) -> list[dict]:
    """The signed-in user's own memberships (RLS policy ``own_memberships``), for the org list
    and the switcher. Runs in the open transaction, or in a short one of its own."""
    if db.engine().current_transaction.get() is not None:
        rows = await db.current_connection().fetch(_USER_ORGS, user_id)
    else:
        async with db.transaction(user_id=user_id) as conn:
            rows = await conn.fetch(_USER_ORGS, user_id)
    return [dict(r) for r in rows]
