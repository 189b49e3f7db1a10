"""Helpers for hand-written migrations: raw SQL and the one RLS policy form we use."""

from __future__ import annotations

from typing import Awaitable, Callable

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

# The tenant of the current transaction. set_config(..., true) makes it transaction-local; after the
# transaction it reads '' rather than NULL, hence NULLIF before the cast.
CURRENT_ORG = "NULLIF(current_setting('app.org_id', true), '')::uuid"
CURRENT_USER = "NULLIF(current_setting('app.user_id', true), '')::uuid"


async def execute(sql: str) -> None:
    """Run one or more statements on the migration's transaction connection."""
    engine = engine_finder()
    tx = engine.current_transaction.get()
    if tx is None:  # pragma: no cover - migrations always run in a transaction
        raise RuntimeError("migration SQL must run inside the migration transaction")
    await tx.connection.execute(sql)


def raw_migration(migration_id: str, description: str, sql: str) -> Callable[[], Awaitable[MigrationManager]]:
    """A migration module's ``forwards``: run ``sql`` in the migration's transaction."""

    async def forwards() -> MigrationManager:
        manager = MigrationManager(migration_id=migration_id, app_name="portal", description=description)

        async def run() -> None:
            await execute(sql)

        manager.add_raw(run)
        return manager

    return forwards


def tenant_rls(table: str) -> str:
    """Enable and force RLS on a tenant table, with the single org-isolation policy."""
    return f"""
    ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
    ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON {table}
        USING (org_id = {CURRENT_ORG})
        WITH CHECK (org_id = {CURRENT_ORG});
    """
