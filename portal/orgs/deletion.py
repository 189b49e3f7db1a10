"""Deleting an organization: everything it owns goes, in one transaction; a receipt stays.

The owner confirms with the org's URL name and their password (re-authentication, throttled like
sign-in, checked by the org middleware before this transaction opens). In the request's transaction the org row is locked ``FOR UPDATE`` (new rows of the org
— every tenant insert takes a key-share lock on it — and concurrent renames or deletions wait),
the org's rows are counted table by table
through its scope, a ``deletion_receipt`` (a global, append-only table) records who deleted what
and how much, and the organization row is deleted: every tenant table cascades from it, so
members, teams, resources, invites, the audit log and stored export archives go with it.
"""

from __future__ import annotations

import json
from uuid import UUID

from portal.db import engine as db
from portal.db import registry
from portal.errors import Invalid, NotFound
from portal.tenancy.context import OrgContext
from portal.tenancy.scope import TenantScope

_LOCK_ORG = "SELECT slug, name FROM organization WHERE id = $1 FOR UPDATE"
_RECEIPT = """
INSERT INTO deletion_receipt (deleted_org_id, slug, name, deleted_by, deleted_by_email, row_counts)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
RETURNING id
"""
_DELETE_ORG = "DELETE FROM organization WHERE id = $1"
ERASE_TIMEOUT = "10min"


async def row_counts(scope: TenantScope) -> dict[str, int]:
    """How many rows the org has in every tenant table (the scope filters; RLS agrees)."""
    registry.load_all()
    counts: dict[str, int] = {}
    for name in sorted(registry.TENANT_TABLES):
        # Table names come from the registry (our own class definitions), never from input.
        counts[name] = int(await scope.fetchval(f'SELECT count(*) FROM "{name}" WHERE org_id = {{org}}'))
    return counts


async def delete_org(ctx: OrgContext, *, confirm: str, password: str) -> str:
    """Delete the org of ``ctx``; return its name. ``Invalid`` (nothing changed) if the typed
    URL name or the password is wrong."""
    errors: dict[str, str] = {}
    if not confirm:
        errors["confirm"] = f"Type {ctx.org.slug} to confirm."
    elif confirm != ctx.org.slug:
        errors["confirm"] = f"That doesn't match. Type {ctx.org.slug} exactly."
    if not password:
        errors["password"] = "Enter your password."
    elif ctx.password_ok is not True:
        # Checked even when the confirmation is wrong (both errors at once), before this
        # transaction opened and throttled like sign-in (route opt ``reauthenticate``).
        errors["password"] = "That password isn't right."
    if errors:
        raise Invalid("The organization was not deleted.", field_errors=errors)
    return await erase(ctx.scope, deleted_by=ctx.user_id, deleted_by_email=ctx.user_email)


async def erase(scope: TenantScope, *, deleted_by: UUID | None, deleted_by_email: str) -> str:
    """In the open transaction (whose tenant is ``scope``'s org): lock the org, count its rows,
    write the receipt, delete the org and, by cascade, everything it owns. Returns its name."""
    conn = db.current_connection()
    # One statement cascades through every table of the org: allow a large org more than the
    # pool's per-statement limit (transaction-local).
    await conn.execute(f"SET LOCAL statement_timeout = '{ERASE_TIMEOUT}'")
    org = await conn.fetchrow(_LOCK_ORG, scope.org_id)
    if org is None:  # deleted by a concurrent request while we waited for the lock
        raise NotFound()
    counts = await row_counts(scope)
    await conn.fetchval(
        _RECEIPT, scope.org_id, org["slug"], org["name"], deleted_by, deleted_by_email, json.dumps(counts, sort_keys=True)
    )
    await conn.execute(_DELETE_ORG, scope.org_id)
    return org["name"]
