"""Members page: index-backed keyset pagination of an org's memberships by joined date."""

from portal.db.ddl import raw_migration

ID = "2026-11-29T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership listing index"

SQL = """
-- The members page walks one org's memberships in joined order, 50 at a time, from a cursor
-- (created_at, id): this index serves the filter, the order and the cursor in one range scan.
CREATE INDEX membership_org_created_id ON membership (org_id, created_at, id);
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
