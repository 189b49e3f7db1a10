"""Exactly what the application's login role may do, applied after every migration.

The app role owns nothing and gets DML only. Append-only tables get no UPDATE or DELETE, so not
even a bug in the application can rewrite history. Tests compare the catalog with this table.
"""

from __future__ import annotations

import asyncpg

from portal.db import registry

DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})

# Tables whose rows are never changed once written.
APPEND_ONLY = {"audit_event", "deletion_receipt"}
NO_ACCESS = {"migration"}
# What a stalled transaction may hold (the same as portal.db.engine's startup settings).
SESSION_DEFAULTS = {"idle_in_transaction_session_timeout": "60s", "lock_timeout": "15s", "statement_timeout": "60s"}
# SECURITY DEFINER functions the app role may call (EXECUTE is revoked from PUBLIC for them).
DEFINER_FUNCTIONS = ("erase_person(uuid, text)", "applied_migrations()")


def expected_privileges() -> dict[str, frozenset[str]]:
    registry.load_all()
    names = set(registry.TENANT_TABLES) | set(registry.GLOBAL_TABLES)
    out: dict[str, frozenset[str]] = {}
    for name in sorted(names):
        if name in NO_ACCESS:
            out[name] = frozenset()
        elif name in APPEND_ONLY:
            out[name] = frozenset({"SELECT", "INSERT"})
        else:
            out[name] = DML
    return out


async def apply(owner_url: str, app_role: str) -> None:
    if not app_role.replace("_", "").isalnum():
        raise ValueError(f"unexpected app role name {app_role!r}")
    conn = await asyncpg.connect(owner_url)
    try:
        async with conn.transaction():
            await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app_role}")
            await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app_role}")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {app_role}")
            existing = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            for table, privs in expected_privileges().items():
                if privs and table in existing:
                    await conn.execute(f"GRANT {', '.join(sorted(privs))} ON {table} TO {app_role}")
            # The app's timeouts as the database's defaults too: asyncpg sends them when it
            # connects, but through a pooler (PgBouncer) they come from here.
            database = await conn.fetchval("SELECT current_database()")
            for setting, value in SESSION_DEFAULTS.items():
                await conn.execute(f'ALTER DATABASE "{database}" SET {setting} = {value!r}')
            for function in DEFINER_FUNCTIONS:
                if await conn.fetchval("SELECT to_regprocedure($1) IS NOT NULL", function):
                    await conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {app_role}")
    finally:
        await conn.close()
