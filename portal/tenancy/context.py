"""Org context: `/orgs/{slug}/…` → the signed-in user's membership, inside one transaction.

``OrgContextMiddleware`` wraps every route under ``/orgs/{slug}``. For each request it:

1. opens the request's transaction (row-level security sees the signed-in user);
2. finds the org by slug and the user's membership in it — unknown org and non-member get the
   same 404;
3. sets the tenant for the rest of the transaction; for unsafe methods takes the org row
   ``FOR NO KEY UPDATE`` (writes within one org queue up in a fixed lock order, so two writes —
   say a double-clicked "delete org" and a concurrent insert — never deadlock) and then re-reads
   the actor's membership ``FOR SHARE``, so a concurrent demotion or removal waits for this
   request to finish, or is seen by it (never acted on stale);
4. checks the permission the route declares (``opt={"permission": Perm.X}``) → 403 otherwise;
5. runs the handler inside the transaction, with the response held back, and commits only if the
   response is a success — so a 303 never reaches the browser before its write is durable, and
   an error response never leaves half a change behind.

Handlers get the result as the ``org`` dependency (``OrgContext``); they never see a raw slug.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

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


# One round trip (see migrations/…09_45…): set the user, find org + membership, set the tenant,
# and for unsafe requests lock, in this order, the org row FOR NO KEY UPDATE (writes of one org
# queue up; no lock cycles between them) and the actor's membership FOR SHARE (FOR KEY SHARE would
# not conflict with an UPDATE of the role; FOR SHARE does, so a demotion waits for us).
_ENTER = "SELECT * FROM enter_org($1, $2, $3)"
SLUG_SHAPE = re.compile(r"^[a-z0-9-]{1,40}$")
MAX_BODY = 1_048_576  # bytes an org form may send
BODY_TIMEOUT = 15.0  # seconds to receive it, before any transaction or lock is taken


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
    if not SLUG_SHAPE.match(slug):
        raise NotFound()
    row = await db.current_connection().fetchrow(_ENTER, slug, user.id, lock)
    if row is None:
        raise NotFound()
    role = row["role"]
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

        unsafe = method not in SAFE_METHODS
        if unsafe:
            # Read the whole body first: a slow or endless upload must not hold a pooled
            # connection, an open transaction and row locks while it trickles in.
            receive = await _buffered_body(receive)
        try:
            async with db.transaction():  # enter_org sets user and tenant
                ctx = await resolve(scope["path_params"]["slug"], user, perm, lock=unsafe, ip=client_ip(scope))
                scope["state"]["org"] = ctx
                await self.app(scope, receive, hold)
                if not streaming and (not status or status[0] >= 400):
                    raise _Rollback
        except _Rollback:
            pass
        except BaseException:
            if held:
                # The held response never left; let the error handler send a proper error page.
                ScopeState.from_scope(scope).response_started = False
            raise
        for message in held:
            await send(message)


async def _buffered_body(receive: Receive) -> Receive:
    chunks: list[bytes] = []
    size = 0

    async def read_all() -> None:
        nonlocal size
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientException("The request was interrupted.", status_code=400)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY:
                raise ClientException("That form is too large.", status_code=413)
            if not message.get("more_body"):
                return

    try:
        await asyncio.wait_for(read_all(), timeout=BODY_TIMEOUT)
    except asyncio.TimeoutError:
        raise ClientException("The request took too long to arrive.", status_code=408) from None
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when it comes

    return replay


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
