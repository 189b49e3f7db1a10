"""Invites: one row per emailed invitation; only the SHA-256 of its token is stored."""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-11-29T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "invites"

SQL = f"""
CREATE TABLE invite (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    email varchar(320) NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
    -- Ownership is transferred, never invited.
    role varchar(32) NOT NULL CHECK (role IN ('billing_admin', 'compliance_officer', 'member')),
    -- hex SHA-256 of the emailed token; the token itself exists only in the email.
    token_hash varchar(64) NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{{64}}$'),
    invited_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- delivery: set after the creating transaction committed and the mail backend answered
    last_sent_at timestamptz,
    send_error varchar(300),
    accepted_at timestamptz,
    accepted_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    revoked_at timestamptz,
    revoked_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    -- a resend retires this row (its link dies) and points at the row that carries the new token
    superseded_at timestamptz,
    replaced_by uuid,
    CONSTRAINT invite_org_id_id UNIQUE (org_id, id),
    CONSTRAINT invite_replaced_by_same_org FOREIGN KEY (org_id, replaced_by) REFERENCES invite (org_id, id),
    CONSTRAINT invite_expires_after_creation CHECK (expires_at > created_at),
    CONSTRAINT invite_one_outcome CHECK (num_nonnulls(accepted_at, revoked_at, superseded_at) <= 1),
    CONSTRAINT invite_replaced_only_when_superseded CHECK (replaced_by IS NULL OR superseded_at IS NOT NULL)
);
CREATE INDEX invite_org_created ON invite (org_id, created_at DESC);
-- One pending invite per (org, address), whatever the code does. Expiry is not part of the
-- predicate (now() is not immutable): inviting an address whose invite expired retires it first.
CREATE UNIQUE INDEX invite_one_pending ON invite (org_id, email)
    WHERE accepted_at IS NULL AND revoked_at IS NULL AND superseded_at IS NULL;
{tenant_rls("invite")}
-- The landing page and acceptance learn the org from the token, not from the URL. The request
-- puts the SHA-256 of the presented token in a transaction-local setting, and this policy makes
-- exactly that one row visible, to read only. A policy rather than a SECURITY DEFINER function:
-- the owner role is itself subject to the forced RLS (it has no BYPASSRLS), the rule stays next
-- to the table where the posture tests and pg_policy show it, and knowing the hash is as hard as
-- knowing the token. Writes (accept) first enter the invite's org, so every write stays under
-- the one tenant_isolation policy.
CREATE POLICY invite_by_token ON invite FOR SELECT
    USING (token_hash = NULLIF(current_setting('app.invite_hash', true), ''));
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
