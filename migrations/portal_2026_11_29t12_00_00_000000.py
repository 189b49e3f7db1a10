"""Org resources: agents, workflows, connections, teams and team members.

Every table is tenant-owned: ``org_id`` NOT NULL, cascading from the organization, indexed first,
and under the one RLS policy. References between tenant rows are composite foreign keys
``(org_id, x_id) → x (org_id, id)``, so the database itself refuses a link to another org's row.
Names are unique per org, case-insensitively.
"""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-11-29T12:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "org resources"

CONNECTION_KINDS = ("openai", "anthropic", "azure_openai", "slack", "github", "jira", "postgres", "s3", "webhook")

SQL = f"""
CREATE TABLE agent (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    model varchar(100) NOT NULL CHECK (length(btrim(model)) > 0),
    status varchar(10) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agent_org_id_id UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX agent_org_name ON agent (org_id, lower(name));
{tenant_rls("agent")}

CREATE TABLE workflow (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    definition jsonb NOT NULL DEFAULT '{{}}'::jsonb CHECK (jsonb_typeof(definition) = 'object'),
    agent_id uuid NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_org_id_id UNIQUE (org_id, id),
    -- NO ACTION (checked at the end of the statement), not RESTRICT: deleting the organization
    -- cascades to agents and workflows in the same statement. The app refuses to delete an agent
    -- that still runs workflows, with a message.
    CONSTRAINT workflow_agent_same_org FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id)
);
CREATE UNIQUE INDEX workflow_org_name ON workflow (org_id, lower(name));
CREATE INDEX workflow_org_agent ON workflow (org_id, agent_id);
{tenant_rls("workflow")}

CREATE TABLE connection (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    kind varchar(32) NOT NULL CHECK (kind IN ({", ".join(f"'{k}'" for k in CONNECTION_KINDS)})),
    config jsonb NOT NULL DEFAULT '{{}}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
    -- Write-only secret: AES-GCM ciphertext under a key derived from SECRET_KEY, bound to the row.
    secret_ciphertext text,
    secret_set_at timestamptz,
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connection_org_id_id UNIQUE (org_id, id),
    CONSTRAINT connection_secret_pair CHECK ((secret_ciphertext IS NULL) = (secret_set_at IS NULL))
);
CREATE UNIQUE INDEX connection_org_name ON connection (org_id, lower(name));
{tenant_rls("connection")}

CREATE TABLE team (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_org_id_id UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX team_org_name ON team (org_id, lower(name));
{tenant_rls("team")}

-- Rows are added and removed, never changed: no updated_at.
CREATE TABLE team_member (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    team_id uuid NOT NULL,
    membership_id uuid NOT NULL,
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT team_member_once UNIQUE (org_id, team_id, membership_id),
    CONSTRAINT team_member_team_same_org FOREIGN KEY (org_id, team_id)
        REFERENCES team (org_id, id) ON DELETE CASCADE,
    -- Removing someone from the org removes them from its teams.
    CONSTRAINT team_member_membership_same_org FOREIGN KEY (org_id, membership_id)
        REFERENCES membership (org_id, id) ON DELETE CASCADE
);
CREATE INDEX team_member_org_membership ON team_member (org_id, membership_id);
{tenant_rls("team_member")}
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
