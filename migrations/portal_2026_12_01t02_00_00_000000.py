"""``applied_migrations()``: which migrations the database has, for ``GET /readyz``.

Piccolo's ``migration`` table stays out of the app role's reach (no privileges at all); this
``SECURITY DEFINER`` function, run as the owner, answers with the names alone.
"""

from portal.db.ddl import raw_migration

ID = "2026-12-01T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "applied_migrations() for the readiness check"

SQL = """
CREATE FUNCTION applied_migrations() RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$ SELECT coalesce(array_agg(name::text), '{}') FROM migration WHERE app_name = 'portal' $$;
REVOKE ALL ON FUNCTION applied_migrations() FROM PUBLIC;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
