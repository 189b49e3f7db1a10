"""An org's custom roles. The DDL (the permission check, the composite foreign keys that
memberships and invites hold them by, RLS) is in ``migrations/portal_2026_11_30t16_00_00_000000.py``."""

from __future__ import annotations

from piccolo.columns import UUID, Array, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import tenant_table
from portal.db.tables import Organization


@tenant_table
class OrgRole(Table, tablename="org_role"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    description = Varchar(length=2000, default="")
    permissions = Array(base_column=Varchar(length=32))  # grantable permissions; org.view is implied
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
