"""The application's database engine and the tenant transaction.

The web app connects as the login role (DATABASE_URL). Every table class is bound to this one
engine at start-up, so every Piccolo query runs on the transaction opened by
``transaction()`` (Piccolo keeps it in a context variable).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator
from uuid import UUID

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from portal.db import registry

_engine: PostgresEngine | None = None


def engine() -> PostgresEngine:
    if _engine is None:
        raise RuntimeError("database engine not started")
    return _engine


def bind(database_url: str) -> PostgresEngine:
    """Create the engine for DATABASE_URL and bind every registered table to it."""
    global _engine
    registry.load_all()
    _engine = PostgresEngine(
        config={
            "dsn": database_url,
            # A stalled transaction must not hold locks and a pooled connection for long.
            "server_settings": {
                "idle_in_transaction_session_timeout": "60s",
                "lock_timeout": "15s",
                "statement_timeout": "60s",
            },
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


async def start_pool(max_size: int) -> None:
    await engine().start_connection_pool(min_size=1, max_size=max_size, reset=_keep_session)


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
    async with engine().transaction():
        conn = current_connection()
        if org_id or user_id:
            await conn.execute(
                "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true)",
                str(org_id) if org_id else "",
                str(user_id) if user_id else "",
            )
        yield conn


async def set_tenant(org_id: UUID) -> None:
    """Switch the open transaction to an org (after resolving it from the URL)."""
    await current_connection().execute("SELECT set_config('app.org_id', $1, true)", str(org_id))


@asynccontextmanager
async def autonomous() -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection of its own, even inside a request transaction: for records that must
    survive that transaction's rollback (failed re-authentication attempts). Global tables only."""
    pool = engine().pool
    if pool is None:
        raise RuntimeError("connection pool not started")
    async with pool.acquire() as conn:
        yield conn


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
    async with pool.acquire() as conn:
        yield conn
