"""A SCIM token reaches the org's agents only when its owner said so (``api_token.manages_agents``).

The Agents resource came after the first SCIM tokens: a token an owner made to provision people
must not silently gain the power to create, pause and delete agents. Tokens default to people and
teams (Users, Groups); the owner ticks "Agents too" when creating a token for an IdP that
provisions agent identities. Every existing SCIM token starts without agents (it fails closed): an
owner whose IdP provisions agents issues a new token with "Agents too"."""

from portal.db.ddl import raw_migration

ID = "2026-12-01T06:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "scim tokens reach agents only when allowed"

SQL = """
ALTER TABLE api_token ADD COLUMN manages_agents boolean NOT NULL DEFAULT false;
ALTER TABLE api_token ADD CONSTRAINT api_token_manages_agents_scim CHECK (NOT manages_agents OR role = 'scim');
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
