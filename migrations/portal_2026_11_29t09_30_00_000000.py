"""Row-level security on the organization row itself.

Anyone may read org rows (slug → org happens before the tenant is known, and reveals nothing a
404 doesn't) and create one, but only the current tenant's row can be changed or deleted. Without
this, a wrong id in an UPDATE or DELETE could rename or wipe another tenant — deletes cascade to
child tables below their own RLS.
"""

from portal.db.ddl import CURRENT_ORG, raw_migration

ID = "2026-11-29T09:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "organization row-level security"

SQL = f"""
ALTER TABLE organization ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization FORCE ROW LEVEL SECURITY;
CREATE POLICY org_read ON organization FOR SELECT USING (true);
CREATE POLICY org_create ON organization FOR INSERT WITH CHECK (true);
CREATE POLICY org_change ON organization FOR UPDATE USING (id = {CURRENT_ORG}) WITH CHECK (id = {CURRENT_ORG});
CREATE POLICY org_delete ON organization FOR DELETE USING (id = {CURRENT_ORG});
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
