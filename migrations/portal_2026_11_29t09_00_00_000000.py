"""Foundation: accounts, sessions, organizations, memberships, billing settings, audit events."""

from portal.db.ddl import CURRENT_USER, raw_migration, tenant_rls

ID = "2026-11-29T09:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "foundation"

SQL = f"""
CREATE TABLE app_user (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(320) NOT NULL UNIQUE CHECK (email = lower(email)),
    name varchar(200) NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_session (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash varchar(64) NOT NULL UNIQUE,
    user_id uuid NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    ip varchar(64),
    user_agent varchar(300)
);
CREATE INDEX user_session_user_id ON user_session (user_id);

CREATE TABLE login_attempt (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(320) NOT NULL,
    ip varchar(64) NOT NULL,
    succeeded boolean NOT NULL DEFAULT false,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempt_email_at ON login_attempt (email, at);
CREATE INDEX login_attempt_ip_at ON login_attempt (ip, at);

CREATE TABLE rate_hit (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket varchar(200) NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rate_hit_bucket_at ON rate_hit (bucket, at);

CREATE TABLE organization (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug varchar(40) NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{{1,38}})[a-z0-9]$'),
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deletion_receipt (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deleted_org_id uuid NOT NULL,  -- deliberately not "org_id": this row is not tenant data
    slug varchar(40) NOT NULL,
    name varchar(100) NOT NULL,
    deleted_by uuid,
    deleted_by_email varchar(320) NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    row_counts jsonb NOT NULL
);

CREATE TABLE membership (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
    role varchar(32) NOT NULL
        CHECK (role IN ('owner', 'billing_admin', 'compliance_officer', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT membership_org_user UNIQUE (org_id, user_id),
    -- target of composite foreign keys from other tenant tables (team members, ...)
    CONSTRAINT membership_org_id_id UNIQUE (org_id, id)
);
CREATE INDEX membership_user_id ON membership (user_id);
-- Exactly one owner per organization, whatever the code does.
CREATE UNIQUE INDEX membership_one_owner ON membership (org_id) WHERE role = 'owner';
{tenant_rls("membership")}
-- Before an org is chosen, a user may see their own memberships (the org list).
CREATE POLICY own_memberships ON membership FOR SELECT
    USING (user_id = {CURRENT_USER});

CREATE TABLE billing_settings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL UNIQUE REFERENCES organization(id) ON DELETE CASCADE,
    plan varchar(20) NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'team', 'enterprise')),
    billing_email varchar(320),
    seat_limit integer NOT NULL DEFAULT 25 CHECK (seat_limit BETWEEN 1 AND 100000),
    spend_cap_cents bigint CHECK (spend_cap_cents >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
{tenant_rls("billing_settings")}

CREATE TABLE audit_event (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    actor_id uuid,
    actor_email varchar(320),
    action varchar(64) NOT NULL,
    target_type varchar(40),
    target_id varchar(64),
    target_label varchar(320),
    before jsonb,
    after jsonb,
    ip varchar(64),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Newest-first keyset pagination within one org.
CREATE INDEX audit_event_org_created ON audit_event (org_id, created_at DESC, id DESC);
CREATE INDEX audit_event_org_action ON audit_event (org_id, action, created_at DESC);
CREATE INDEX audit_event_org_actor ON audit_event (org_id, actor_id, created_at DESC);
{tenant_rls("audit_event")}
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
