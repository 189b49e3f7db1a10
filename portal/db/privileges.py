"""Exactly what the application's login role may do, applied after every migration.

The app role owns nothing and gets DML only. Append-only tables get no UPDATE or DELETE, so not
even a bug in the application can rewrite history. Tests compare the catalog with this table.
"""

from __future__ import annotations

import logging
import re

import asyncpg

from portal.db import registry

log = logging.getLogger(__name__)

DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})

# Tables whose rows are never changed once written.
APPEND_ONLY = {"audit_event", "deletion_receipt"}
NO_ACCESS = {"migration"}
# What a stalled transaction may hold: sent by portal.db.engine when it connects, and the app
# role's defaults in the database (``apply_session_defaults``) for connections through a pooler.
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


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (``"`` doubled) so any name is taken literally."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def apply(owner_url: str, app_role: str, app_url: str = "") -> None:
    """Grant ``app_role`` exactly its privileges (as the owner), and make the timeouts its session
    defaults in this database (as ``app_role`` itself, through ``app_url``)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", app_role):  # as PostgreSQL folds an unquoted name
        raise ValueError(f"unexpected app role name {app_role!r}: lower-case letters, digits and _")
    role = quote_ident(app_role)
    conn = await asyncpg.connect(owner_url)
    try:
        async with conn.transaction():
            await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
            existing = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            for table, privs in expected_privileges().items():
                if privs and table in existing:
                    await conn.execute(f"GRANT {', '.join(sorted(privs))} ON {table} TO {role}")
            for function in DEFINER_FUNCTIONS:
                if await conn.fetchval("SELECT to_regprocedure($1) IS NOT NULL", function):
                    await conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {role}")
        if app_url:  # the role's own defaults first: only once they hold, take back the database-wide ones
            await apply_session_defaults(app_url, app_role)
            await _reset_database_defaults(conn)
    finally:
        await conn.close()


async def apply_session_defaults(app_url: str, app_role: str) -> None:
    """The app's timeouts as the app role's defaults in this database: asyncpg sends them when it
    connects, but through a pooler (PgBouncer) they come from here. Set by the app role itself
    (any role may set its own defaults; setting another role's needs CREATEROLE), and for that
    role only, so migrations and maintenance sessions are not cut off at 60 s."""
    conn = await asyncpg.connect(app_url, statement_cache_size=0)  # DATABASE_URL may be a pooler
    try:
        role, database = await conn.fetchrow("SELECT current_user, current_database()")
        if role != app_role:
            raise ValueError(f"DATABASE_URL connects as {role!r}, not {app_role!r}")
        target = f"{quote_ident(app_role)} IN DATABASE {quote_ident(database)}"
        for setting, value in SESSION_DEFAULTS.items():
            await conn.execute(f"ALTER ROLE {target} SET {setting} = {quote_literal(value)}")
    finally:
        await conn.close()


async def _reset_database_defaults(conn: asyncpg.Connection) -> None:
    """Earlier releases set the timeouts for the whole database (every role, migrations too).
    Take back exactly the values they set, if this role may (it owns the database); a value an
    operator chose stays."""
    row = await conn.fetchrow(
        """SELECT d.datname, s.setconfig, pg_has_role(current_user, d.datdba, 'USAGE') AS owns
           FROM pg_database d LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0
           WHERE d.datname = current_database()"""
    )
    ours = {f"{setting}={value}" for setting, value in SESSION_DEFAULTS.items()}
    stale = [entry.split("=", 1)[0] for entry in row["setconfig"] or () if entry in ours]
    if not stale:
        return
    if not row["owns"]:
        log.warning("the database %s still sets %s for every role; its owner can RESET them", row["datname"], ", ".join(stale))
        return
    for setting in stale:
        await conn.execute(f"ALTER DATABASE {quote_ident(row['datname'])} RESET {setting}")
