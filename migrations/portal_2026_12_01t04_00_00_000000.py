"""The org's agents as SCIM resources (draft-abbey-scim-agent-extension-00): what an identity
provider keeps of an agent beside what the portal does — its own id for it, the name it shows,
its kind, and what it last said of ``active`` (the agent's status says whether it runs)."""

from portal.db.ddl import raw_migration

ID = "2026-12-01T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "scim attributes of agents"

SQL = """
ALTER TABLE agent
    ADD COLUMN scim_external_id varchar(200),
    ADD COLUMN scim_display_name varchar(200),
    ADD COLUMN scim_agent_type varchar(100),
    ADD COLUMN scim_active boolean;  -- what the IdP last said of "active" (NULL: never, or removed)
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
