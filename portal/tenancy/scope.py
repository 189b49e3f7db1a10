"""The scoping layer: the one way application code reads or writes tenant tables.

A ``TenantScope`` is bound to one organization and lives only inside that organization's request
transaction (where row-level security is set to the same org, as a second, independent wall).
Every query it builds carries ``org_id = <this org>``; inserts get ``org_id`` from the scope;
update and delete require an explicit ``where``; global tables are refused. Raw SQL must say where
the org filter goes with ``{org}``, which the scope binds to its own org id.

``tests/test_scoping.py`` scans the code base: a tenant table queried anywhere else fails it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from piccolo.columns import Column
from piccolo.columns.combination import Combinable
from piccolo.table import Table

from portal.db import engine as db
from portal.db.registry import is_tenant_table


class ScopeError(RuntimeError):
    """A programming error: a query that would escape the tenant boundary."""


_ORG_PLACEHOLDER = re.compile(r"\{org\}")


@dataclass(frozen=True)
class TenantScope:
    org_id: UUID

    # -- Piccolo queries ---------------------------------------------------------------------
    def _check(self, table: type[Table]) -> None:
        if not is_tenant_table(table):
            raise ScopeError(f"{table._meta.tablename} is not a tenant table; query it through its own service")

    def _org_filter(self, table: type[Table]) -> Combinable:
        return table.org_id == self.org_id  # type: ignore[attr-defined]

    def select(self, table: type[Table], *columns: Column | str):
        self._check(table)
        return table.select(*columns).where(self._org_filter(table))

    def objects(self, table: type[Table]):
        self._check(table)
        return table.objects().where(self._org_filter(table))

    def count(self, table: type[Table], where: Combinable | None = None):
        self._check(table)
        query = table.count().where(self._org_filter(table))
        return query.where(where) if where is not None else query

    def exists(self, table: type[Table], where: Combinable):
        self._check(table)
        return table.exists().where(self._org_filter(table)).where(where)

    def new(self, table: type[Table], **values: Any) -> Table:
        """A row of this org, not yet saved (``org_id`` comes from the scope, never the caller)."""
        self._check(table)
        if "org_id" in values:
            raise ScopeError("org_id comes from the scope, not from the caller")
        return table(org_id=self.org_id, **values)

    async def insert(self, table: type[Table], **values: Any) -> Table:
        row = self.new(table, **values)
        await table.insert(row)
        return row

    def update(self, table: type[Table], values: dict, *, where: Combinable):
        self._check(table)
        if any(getattr(k, "_meta", None) and k._meta.name == "org_id" or k == "org_id" for k in values):
            raise ScopeError("a row never moves to another org")
        return table.update(values).where(self._org_filter(table)).where(where)

    def delete(self, table: type[Table], *, where: Combinable):
        self._check(table)
        return table.delete().where(self._org_filter(table)).where(where)

    # -- raw SQL -----------------------------------------------------------------------------
    def _bind(self, sql: str, args: tuple) -> tuple[str, list]:
        if not _ORG_PLACEHOLDER.search(sql):
            raise ScopeError("raw tenant SQL must place its org filter with {org}")
        n = len(args) + 1
        return _ORG_PLACEHOLDER.sub(f"${n}::uuid", sql), [*args, self.org_id]

    async def fetch(self, sql: str, *args: Any) -> list:
        query, params = self._bind(sql, args)
        return await db.current_connection().fetch(query, *params)

    async def fetchrow(self, sql: str, *args: Any):
        query, params = self._bind(sql, args)
        return await db.current_connection().fetchrow(query, *params)

    async def fetchval(self, sql: str, *args: Any):
        query, params = self._bind(sql, args)
        return await db.current_connection().fetchval(query, *params)

    async def execute(self, sql: str, *args: Any) -> str:
        query, params = self._bind(sql, args)
        return await db.current_connection().execute(query, *params)


async def enter(org_id: UUID) -> TenantScope:
    """Point the open transaction at ``org_id`` and return its scope.

    For flows that learn the org from something other than the URL (creating an org, accepting
    an invite); the caller has already established the right to act on it.
    """
    await db.set_tenant(org_id)
    return TenantScope(org_id)
