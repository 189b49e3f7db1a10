"""API tokens. The DDL (hash-only storage, the role's composite foreign key, the lifetime check,
the ``token_by_hash`` policy, ``enter_token``) is in ``migrations/portal_2026_11_30t17_00_00_000000.py``."""

from __future__ import annotations

from piccolo.columns import Boolean, UUID, Bytea, ForeignKey, Integer, JSONB, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import global_table, tenant_table
from portal.db.tables import Organization


@tenant_table
class ApiToken(Table, tablename="api_token"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    prefix = Varchar(length=16)  # "prt_" and the first characters: what lists show
    token_hash = Varchar(length=64, unique=True)  # hex SHA-256; the token is never stored
    role = Varchar(length=32)  # a built-in role but owner, or "custom"
    custom_role_id = UUID(null=True)
    agent_id = UUID(null=True)  # role "agent": the agent it acts as (composite FK; NULL once deleted, then revoked)
    created_by = UUID(null=True)
    created_by_email = Varchar(length=320)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    revoked_by = UUID(null=True)
    manages_agents = Boolean(default=False)  # a SCIM token: it may also provision the org's agents


@tenant_table
class ApiIdempotency(Table, tablename="api_idempotency"):
    """The response of a creating POST sent with an ``Idempotency-Key``, replayed to its retries."""

    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False)
    token_id = UUID()  # (org_id, token_id) → api_token (org_id, id) ON DELETE CASCADE
    key = Varchar(length=200)
    request_hash = Varchar(length=64)
    status = Integer()
    headers = JSONB(default="{}")
    body = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())


@global_table("Calls per API token and minute, counted before the token's org is known (hashes and counts only).")
class ApiRate(Table, tablename="api_rate"):
    bucket = Varchar(length=120, primary_key=True)  # "<token hash>@<minute>"
    minute = Timestamptz()
    hits = Integer()
