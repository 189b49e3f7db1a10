"""Keys a distributed PostgreSQL can shard by org (the multi-tenant model of Citus, docs/scaling.md).

A sharded table's primary key and unique constraints must include its distribution column, and so
must foreign keys between sharded tables. References between tenant rows already are composite
(``(org_id, …)``); this migration makes the rest so:

* every tenant table's primary key becomes ``(org_id, id)`` (lookups by id alone always come with
  the org, through the scope or the row-level security policy, so the new index serves them);
* the invite and API token hashes are unique per org (``(org_id, token_hash)``) and keep a plain
  index for the lookup by hash: 256 random bits never collide across orgs, and a uniqueness check
  across every shard is what a distributed database cannot do cheaply.

``tests/tenancy/test_distribution.py`` holds the schema to it.
"""

from portal.db.ddl import raw_migration

ID = "2026-12-01T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant keys that include org_id (distribution readiness)"

SQL = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT c.relname, con.conname
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND con.contype = 'p'
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND a.attnum = ANY (con.conkey))
    LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', r.relname, r.conname);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (org_id, id)', r.relname, r.relname || '_pkey');
    END LOOP;
END
$$;

ALTER TABLE invite DROP CONSTRAINT invite_token_hash_key;
ALTER TABLE invite ADD CONSTRAINT invite_org_token_hash UNIQUE (org_id, token_hash);
CREATE INDEX invite_token_hash ON invite (token_hash);

ALTER TABLE api_token DROP CONSTRAINT api_token_token_hash_key;
ALTER TABLE api_token ADD CONSTRAINT api_token_org_token_hash UNIQUE (org_id, token_hash);
CREATE INDEX api_token_token_hash ON api_token (token_hash);
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
