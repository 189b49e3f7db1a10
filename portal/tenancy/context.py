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

Two kinds of route never keep that transaction while waiting for something slow (SPEC §9):
routes that re-enter a password (``opt={"reauthenticate": True}``) have it verified before the
transaction opens (``portal.accounts.reauth``, the middleware just outside this one), and
downloads (``opt={"streaming": True}``) commit right after resolving and
read each chunk in a short transaction of its own (``org_transaction``).

Handlers get the result as the ``org`` dependency (``OrgContext``); they never see a raw slug.
"""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator
from uuid import UUID

from litestar import Request
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from portal.db import engine as db
from portal.errors import Forbidden, NotFound
from portal.tenancy.permissions import MATRIX, ROLE_LABELS, Perm, Role, custom_permissions
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
    # For routes that re-authenticate (``opt={"reauthenticate": True}``): whether the password in
    # the form was right, checked before this transaction opened; None when none was given.
    password_ok: bool | None = None
    permission: Perm = Perm.VIEW  # the one the route declared
    # The signed-in user's orgs (slug, name, role) for the layout's switcher, read by the same
    # statement that resolved the org on page loads (safe requests); None when not read.
    my_orgs: tuple[dict, ...] | None = None
    # What the role allows, read with the membership: the matrix's row for a built-in role, the
    # org's row for a custom one (``Perm`` is a ``str`` enum: a plain permission name tests the same).
    perms: frozenset[Perm] = frozenset()
    custom_role_id: UUID | None = None  # with ``role`` CUSTOM: the org's role the member holds
    role_name: str | None = None  # its name
    # A program's call (``portal.api.auth``): the API token acting, and how audit events name it.
    # ``user_id``/``user_email`` are then those of the person who created the token.
    token_id: UUID | None = None
    actor_label: str | None = None
    agent_id: UUID | None = None  # an agent's token: the agent it acts as (``perms`` is then {AGENT})

    def can(self, perm: Perm | str) -> bool:
        return perm in self.perms

    @property
    def role_label(self) -> str:
        return self.role_name if self.role is Role.CUSTOM and self.role_name else ROLE_LABELS[self.role]


class _Rollback(Exception):
    pass


@dataclass(frozen=True)
class _Actor:
    id: UUID
    email: str
    name: str


@asynccontextmanager
async def org_transaction(ctx: OrgContext) -> AsyncIterator[OrgContext]:
    """A short transaction of its own for ``ctx``'s org, for streaming routes (downloads), whose
    handler runs outside the request transaction. The membership and the route's permission are
    read again, so a member removed or demoted mid-download gets no further chunk.

    Never ``yield`` a chunk to the client inside this block: fetch, leave, then send.
    """
    async with db.transaction():
        current = await resolve(
            ctx.org.slug, _Actor(ctx.user_id, ctx.user_email, ctx.user_name), ctx.permission, lock=False, ip=ctx.ip
        )
        if current.org.id != ctx.org.id:  # deleted, and its slug taken by another org meanwhile
            raise NotFound()
        yield current


# One round trip (see migrations/…09_45… and …30t13…): set the user, find org + membership, set
# the tenant, and for unsafe requests lock, in this order, the org row FOR NO KEY UPDATE (writes of
# one org queue up; no lock cycles between them) and the actor's membership FOR SHARE (FOR KEY
# SHARE would not conflict with an UPDATE of the role; FOR SHARE does, so a demotion waits for
# us). Page loads also get the user's org list for the switcher, saving the page a statement.
_ENTER = "SELECT * FROM enter_org($1, $2, $3, $4)"
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


async def resolve(
    slug: str, user: Any, perm: Perm, *, lock: bool, ip: str = "", password_ok: bool | None = None, my_orgs: bool = False
) -> OrgContext:
    """Resolve the org for the open transaction; raise NotFound / Forbidden. ``my_orgs``: also
    read the user's org list (for pages, which show the switcher)."""
    if not SLUG_SHAPE.match(slug):
        raise NotFound()
    row = await db.current_connection().fetchrow(_ENTER, slug, user.id, lock, my_orgs)
    if row is None:
        raise NotFound()
    role = Role(row["role"])
    perms = custom_permissions(row["permissions"]) if role is Role.CUSTOM else MATRIX[role]
    if perm not in perms:
        raise Forbidden("Your role in this organization doesn't allow that.")
    return OrgContext(
        org=Org(row["org_id"], row["slug"], row["name"]),
        membership_id=row["membership_id"],
        role=role,
        perms=perms,
        custom_role_id=row["custom_role_id"],
        role_name=row["role_name"],
        user_id=user.id,
        user_email=user.email,
        user_name=user.name,
        ip=ip,
        scope=TenantScope(row["org_id"]),
        password_ok=password_ok,
        permission=perm,
        my_orgs=tuple(json.loads(row["my_orgs"])) if row["my_orgs"] is not None else None,
    )


class OrgContextMiddleware:
    """Runs an org route inside one transaction that first enters the org (``enter``) as the
    signed-in person; the response leaves only once that transaction has committed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def enter(self, scope: Scope, perm: Perm, *, lock: bool, page: bool) -> OrgContext:
        """The org context for this request, in the open transaction; NotFound / Forbidden."""
        user = scope.get("user")
        if user is None:  # the session middleware redirects first; this is a second wall
            raise NotFound()
        # A re-entered password was checked before this transaction (portal.accounts.reauth).
        return await resolve(
            scope["path_params"]["slug"], user, perm, lock=lock, ip=client_ip(scope),
            password_ok=scope["state"].get("password_ok"), my_orgs=page,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = scope["route_handler"]
        perm = required_permission(handler)
        streaming = bool(handler.opt.get("streaming"))
        method = scope["method"]
        held: list[Message] = []
        status: list[int] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            held.append(message)

        unsafe = method not in SAFE_METHODS
        if streaming and not unsafe:
            # A download must not keep a transaction (and a pooled connection) open while a slow
            # client reads it: resolve and commit now; the handler and its stream read through
            # short transactions of their own (``org_transaction``).
            async with db.transaction():
                scope["state"]["org"] = await self.enter(scope, perm, lock=False, page=False)
            await self.app(scope, receive, send)
            return
        if unsafe:
            # Read the whole body first: a slow or endless upload must not hold a pooled
            # connection, an open transaction and row locks while it trickles in.
            receive = replay(await read_body(receive), receive)
        try:
            async with db.transaction():  # enter_org sets user and tenant
                ctx = await self.enter(scope, perm, lock=unsafe, page=not unsafe)
                scope["state"]["org"] = ctx
                await self.app(scope, receive, hold)
                if not status or status[0] >= 400:
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


async def read_body(receive: Receive) -> bytes:
    """The whole body, within ``MAX_BODY`` bytes and ``BODY_TIMEOUT`` seconds."""
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
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over ``body`` (read before) in one message, then waits on the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when it comes

    return replayed


def provide_org(request: Request) -> OrgContext:
    """The ``org`` dependency of org routes."""
    return request.scope["state"]["org"]

