"""Which tables are tenant-owned and which are global: the inventory the tests hold us to.

Every table in the database must be registered here through one of the two decorators. A tenant
table carries ``org_id`` and row-level security; the scoping layer is the only code allowed to
query it. A global table carries no tenant data, and each one states why it is global.
"""

from __future__ import annotations

from piccolo.table import Table

from portal import domains

TENANT_TABLES: dict[str, type[Table]] = {}
GLOBAL_TABLES: dict[str, tuple[type[Table] | None, str]] = {}


def tenant_table(cls: type[Table]) -> type[Table]:
    if "org_id" not in {c._meta.db_column_name for c in cls._meta.columns}:
        raise TypeError(f"tenant table {cls._meta.tablename} has no org_id column")
    TENANT_TABLES[cls._meta.tablename] = cls
    return cls


def global_table(reason: str):
    def register(cls: type[Table]) -> type[Table]:
        GLOBAL_TABLES[cls._meta.tablename] = (cls, reason)
        return cls

    return register


# Piccolo's own bookkeeping table: migration names, no tenant data, no access for the app role.
GLOBAL_TABLES["migration"] = (None, "Piccolo's migration history; the app role has no access.")


def is_tenant_table(table: type[Table]) -> bool:
    return TENANT_TABLES.get(table._meta.tablename) is table


def load_all() -> None:
    """Import every module that declares tables (``portal.domains``), so the registry is complete."""
    domains.table_modules()
