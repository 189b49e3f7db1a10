"""The invite table (DDL, RLS and constraints in migrations/portal_2026_11_29t11_00_00_000000.py)."""

from __future__ import annotations

from piccolo.columns import UUID, ForeignKey, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import tenant_table
from portal.db.tables import Organization


@tenant_table
class Invite(Table, tablename="invite"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    email = Varchar(length=320)  # stored lower-cased
    role = Varchar(length=32)  # never "owner"; "custom" for one of the org's own roles
    custom_role_id = UUID(null=True)  # with "custom": (org_id, custom_role_id) → org_role (org_id, id)
    token_hash = Varchar(length=64, unique=True)  # hex SHA-256; the token is never stored
    invited_by = UUID(null=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    last_sent_at = Timestamptz(null=True, default=None)
    send_error = Varchar(length=300, null=True, default=None)
    accepted_at = Timestamptz(null=True, default=None)
    accepted_by = UUID(null=True)
    revoked_at = Timestamptz(null=True, default=None)
    revoked_by = UUID(null=True)
    superseded_at = Timestamptz(null=True, default=None)
    replaced_by = UUID(null=True)
