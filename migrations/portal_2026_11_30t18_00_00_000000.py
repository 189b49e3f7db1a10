"""Idempotent creation and a rate limit for API tokens (SPEC §11).

**``api_idempotency``**: a creating ``POST`` with an ``Idempotency-Key`` stores its response here,
in the same transaction as what it created; the same key from the same token with the same body
gets that response again instead of creating twice, and with another body a 422. Unsafe requests
of one org already queue on the org row (``enter_token``), so concurrent retries see the first
one's record once it commits. Records older than a day are swept as new ones arrive.

**``api_rate``**: calls per token and minute, counted by one autocommitted upsert before the
request's transaction opens (so the counter row is locked for one statement, never for a
request). Keyed by the hash of the presented token, valid or not: a flood of made-up tokens from
one client is counted too (per client network, the same table). A global table: it holds hashes
and counts, no tenant data.
"""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-11-30T18:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api idempotency and rate"

SQL = f"""
CREATE TABLE api_idempotency (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    token_id uuid NOT NULL,
    key varchar(200) NOT NULL,
    request_hash varchar(64) NOT NULL,
    status integer NOT NULL,
    headers jsonb NOT NULL DEFAULT '{{}}',
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_idempotency_token_same_org FOREIGN KEY (org_id, token_id) REFERENCES api_token (org_id, id) ON DELETE CASCADE,
    CONSTRAINT api_idempotency_one_per_key UNIQUE (org_id, token_id, key)
);
CREATE INDEX api_idempotency_org_created ON api_idempotency (org_id, created_at);
{tenant_rls("api_idempotency")}

CREATE UNLOGGED TABLE api_rate (
    bucket varchar(120) PRIMARY KEY,  -- "<token hash>@<minute>"
    minute timestamptz NOT NULL,
    hits integer NOT NULL
);
CREATE INDEX api_rate_minute ON api_rate (minute);
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
