"""Org resources: agents, workflows, connections, teams and team members.

The DDL (composite foreign keys, case-insensitive unique names, RLS) is in
``migrations/portal_2026_11_29t12_00_00_000000.py``; these classes describe the same tables.
"""

from __future__ import annotations

from piccolo.columns import JSONB, UUID, Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from portal.db.registry import tenant_table
from portal.db.tables import Organization


@tenant_table
class Agent(Table, tablename="agent"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    description = Varchar(length=2000, default="")
    model = Varchar(length=100)
    status = Varchar(length=10, default="active")
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # What an identity provider keeps of the agent (SCIM Agent): its id for it, its name, its kind.
    scim_external_id = Varchar(length=200, null=True, default=None)
    scim_display_name = Varchar(length=200, null=True, default=None)
    scim_agent_type = Varchar(length=100, null=True, default=None)
    scim_active = Boolean(null=True, default=None)


@tenant_table
class Workflow(Table, tablename="workflow"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    description = Varchar(length=2000, default="")
    definition = JSONB(default="{}")
    agent_id = UUID()  # (org_id, agent_id) → agent (org_id, id) in the database
    enabled = Boolean(default=True)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


@tenant_table
class Connection(Table, tablename="connection"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    kind = Varchar(length=32)
    config = JSONB(default="{}")
    secret_ciphertext = Text(null=True, default=None)  # never selected for display
    secret_set_at = Timestamptz(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


@tenant_table
class Team(Table, tablename="team"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    name = Varchar(length=100)
    description = Varchar(length=2000, default="")
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    scim_external_id = Varchar(length=200, null=True, default=None)  # the IdP's id for the team (SCIM Group)


@tenant_table
class TeamMember(Table, tablename="team_member"):
    id = UUID(primary_key=True)
    org_id = ForeignKey(references=Organization, null=False, index=True)
    team_id = UUID()  # (org_id, team_id) → team (org_id, id) ON DELETE CASCADE
    membership_id = UUID()  # (org_id, membership_id) → membership (org_id, id) ON DELETE CASCADE
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
