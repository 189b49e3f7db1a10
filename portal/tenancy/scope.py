"""The scoping layer: the one way application code reads or writes tenant tables.

A ``TenantScope`` is bound to one organization and lives only inside that organization's request
transaction (where row-level security is set to the same org, as a second, independent wall).
Tenant SQL is written once, as SQL, and says where the org filter goes with ``{org}``; the scope
binds every ``{org}`` to its own org id as the last parameter, and refuses a statement without one.
Most resources never write it at all: ``portal.resources.layer`` builds their statements from the
declaration.

``tests/tenancy/test_scoping.py`` scans the code base: a tenant table queried anywhere else fails it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from portal.db import engine as db


class ScopeError(RuntimeError):
    """A programming error: tenant SQL that does not place its org filter."""


_ORG_PLACEHOLDER = re.compile(r"\{org\}")


@dataclass(frozen=True)
class TenantScope:
    org_id: UUID

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
