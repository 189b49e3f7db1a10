"""The application's database engine and the tenant transaction.

The web app connects as the login role (DATABASE_URL). Every table class is bound to this one
engine at start-up, so every Piccolo query runs on the transaction opened by
``transaction()`` (Piccolo keeps it in a context variable).
"""

from __future__ import annotations

import asyncio
import errno
import contextvars
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator
from uuid import UUID

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from portal.db import registry
from portal.db.privileges import SESSION_DEFAULTS
from portal.errors import Unavailable

_engine: PostgresEngine | None = None
DEFAULT_ACQUIRE_TIMEOUT = 5.0


class HeldConnectionError(RuntimeError):
    """A coroutine that holds a pooled connection waited for something slow (another pooled
    connection, a password hash, SMTP). A programming error: with N such requests in flight a
    pool of N deadlocks, and every org waits. Raised at once, in production too, so it is found."""


# The pooled connection the current task holds, if any (set on acquire, cleared on release).
# Background tasks start in an empty context and so hold nothing until they acquire.
_held: contextvars.ContextVar[tuple[asyncio.Task | None, Any] | None] = contextvars.ContextVar("portal_held_connection", default=None)


def holding() -> bool:
    """Whether the running task holds a pooled connection."""
    held = _held.get()
    return held is not None and held[0] is asyncio.current_task()


def forbid_while_holding(what: str) -> None:
    """Fail loudly if the running task holds a pooled connection while about to wait for ``what``."""
    if holding():
        raise HeldConnectionError(f"{what} while holding a pooled database connection")


class _Acquire:
    """``pool.acquire()``: awaitable (Piccolo) and an async context manager (asyncpg style)."""

    def __init__(self, pool: "GuardedPool", timeout: float | None) -> None:
        self.pool, self.timeout, self.conn = pool, timeout, None

    def __await__(self):
        return self.pool._acquire(self.timeout).__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        self.conn = await self.pool._acquire(self.timeout)
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.release(self.conn)


class GuardedPool:
    """The asyncpg pool behind one rule: a task holds at most one pooled connection, and waits
    for one at most ``acquire_timeout`` seconds (then ``Unavailable``: a 503 with Retry-After,
    never a hang). Everything else is delegated to the asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float) -> None:
        self._pool = pool
        self.acquire_timeout = acquire_timeout
        self.waiting = 0

    def acquire(self, *, timeout: float | None = None) -> _Acquire:
        return _Acquire(self, timeout)

    async def _acquire(self, timeout: float | None) -> asyncpg.Connection:
        forbid_while_holding("acquiring a second pooled connection")
        self.waiting += 1
        try:
            conn = await self._pool.acquire(timeout=timeout or self.acquire_timeout)
        except asyncio.TimeoutError:
            raise Unavailable("The service is busy right now. Please try again in a moment.", retry_after=2) from None
        finally:
            self.waiting -= 1
        _held.set((asyncio.current_task(), conn))
        return conn

    async def release(self, conn: asyncpg.Connection, *, timeout: float | None = None) -> None:
        held = _held.get()
        if held is not None and held[1] is conn:
            _held.set(None)
        await self._pool.release(conn, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


# What a request meets while PostgreSQL restarts or is out of reach: the connection was closed
# under it, could not be made, or the server is starting up, shutting down or full. Nothing
# broader: a client-side error (a value asyncpg cannot encode, a protocol bug) is a 500.
_DOWN = (
    # SQLSTATE class 08, connection exception: the connection does not exist or failed, or could
    # not be made (PgBouncer reports a server it cannot reach as 08P01).
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,  # refused, reset, broken pipe
)

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}  # refused and reset are ConnectionErrors
# asyncpg's own errors ("connection is closed", "another operation is in progress", a protocol
# state it cannot leave): the database is down when the connection they happened on is gone, a
# programming error otherwise.
_ASYNCPG_CLIENT_ERRORS = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
_CONNECTION_LOST = "_portal_connection_lost"  # noted on such an error by transaction()/connection()
# ... and one the connection is not yet known to be gone by: asyncpg's protocol was still
# discarding a message the server sent between operations (state 2, ERROR_CONSUME) when the next
# one began. PostgreSQL sends one between operations only as it ends the session (shutdown,
# terminated backend); the restart test meets it under load (asyncpg 0.3x's wording).
_SERVER_ENDED = "another operation (2) is in progress"


def database_down(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable right now (a 503, not a 500)."""
    if isinstance(exc, _DOWN) or (isinstance(exc, OSError) and exc.errno in _UNREACHABLE):
        return True
    if isinstance(exc, _ASYNCPG_CLIENT_ERRORS) and not isinstance(exc, (asyncpg.DataError, asyncpg.ClientConfigurationError)):
        # noted as it left the transaction, or (a handler inside the transaction) its connection now
        tx = _engine.current_transaction.get() if _engine is not None else None
        return (getattr(exc, _CONNECTION_LOST, False) or _SERVER_ENDED in str(exc)
                or (tx is not None and _closed(_raw_connection(tx.connection))))
    return False


def _closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except Exception:  # a proxy already released to the pool
        return False


def _mark_if_closed(exc: BaseException, conn: Any) -> None:
    """Note on an asyncpg client error that the connection it happened on is closed (``database_down``)."""
    if conn is not None and _closed(conn):
        setattr(exc, _CONNECTION_LOST, True)


def _raw_connection(conn: Any) -> Any:
    """The asyncpg connection behind a pool's proxy: it can still be asked ``is_closed()`` after
    the proxy is released back to the pool."""
    return getattr(conn, "_con", None) or conn


def engine() -> PostgresEngine:
    if _engine is None:
        raise RuntimeError("database engine not started")
    return _engine


def bind(database_url: str, *, statement_cache_size: int = 100) -> PostgresEngine:
    """Create the engine for DATABASE_URL and bind every registered table to it.
    ``statement_cache_size=0`` behind PgBouncer in transaction pooling mode (``DB_STATEMENT_CACHE``):
    a prepared statement would outlive the transaction's server connection."""
    global _engine
    registry.load_all()
    _engine = PostgresEngine(
        config={
            "dsn": database_url,
            "statement_cache_size": statement_cache_size,
            # A stalled transaction must not hold locks and a pooled connection for long.
            "server_settings": dict(SESSION_DEFAULTS),
        },
        log_queries=False,
    )
    for table in [*registry.TENANT_TABLES.values(), *(t for t, _ in registry.GLOBAL_TABLES.values() if t)]:
        table._meta.db = _engine
    return _engine


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's default RESET ALL round trip.

    The app never changes session state: tenant settings are transaction-local
    (``set_config(..., true)``, enforced by tests/test_scoping.py), and asyncpg still rolls back
    a transaction left open before this hook runs. One round trip fewer per connection use.
    """


async def start_pool(max_size: int, *, acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT) -> None:
    eng = engine()
    await eng.start_connection_pool(min_size=1, max_size=max_size, reset=_keep_session)
    eng.pool = GuardedPool(eng.pool, acquire_timeout)  # type: ignore[assignment]


async def close_pool() -> None:
    eng = _engine
    if eng is not None and eng.pool is not None:
        try:
            await asyncio.wait_for(eng.close_connection_pool(), timeout=5)
        except asyncio.TimeoutError:  # a connection stuck mid-BEGIN never returns (STACK-NOTES)
            eng.pool.terminate()
        eng.pool = None


def current_connection() -> asyncpg.Connection:
    tx = engine().current_transaction.get()
    if tx is None:
        raise RuntimeError("no transaction is open: tenant data is only read inside one")
    return tx.connection


@asynccontextmanager
async def transaction(*, org_id: UUID | None = None, user_id: UUID | None = None) -> AsyncIterator[asyncpg.Connection]:
    """Open a transaction and set the tenant (and user) for row-level security.

    The settings are transaction-local (``set_config(..., true)``), so a pooled connection never
    carries one request's tenant into the next.
    """
    if engine().current_transaction.get() is not None:
        raise RuntimeError("nested tenant transactions are not allowed")
    raw = None
    try:
        async with engine().transaction():
            conn = current_connection()
            raw = _raw_connection(conn)
            if org_id or user_id:
                await conn.execute(
                    "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true)",
                    str(org_id) if org_id else "",
                    str(user_id) if user_id else "",
                )
            yield conn
    except _ASYNCPG_CLIENT_ERRORS as exc:
        _mark_if_closed(exc, raw)
        raise


async def set_tenant(org_id: UUID) -> None:
    """Switch the open transaction to an org (after resolving it from the URL)."""
    await current_connection().execute("SELECT set_config('app.org_id', $1, true)", str(org_id))


@asynccontextmanager
async def connection() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection outside any tenant transaction (global tables only)."""
    tx = engine().current_transaction.get()
    if tx is not None:
        yield tx.connection
        return
    pool = engine().pool
    if pool is None:
        raise RuntimeError("connection pool not started")
    raw = None
    try:
        async with pool.acquire() as conn:
            raw = _raw_connection(conn)
            yield conn
    except _ASYNCPG_CLIENT_ERRORS as exc:
        _mark_if_closed(exc, raw)
        raise
