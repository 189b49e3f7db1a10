"""`enter_org`: resolve `/orgs/{slug}` for the signed-in user in one round trip.

It does, in order and inside the caller's transaction, what the org context middleware used to do
in several statements: set the user for row-level security, find the org by slug and the user's
membership in it (own_memberships policy), set the tenant, and — for unsafe requests — lock the org
row FOR NO KEY UPDATE and then the membership FOR SHARE, re-reading the role under the lock.
SECURITY INVOKER: it runs as the app role, under the same policies as any other query.
"""

from portal.db.ddl import raw_migration

ID = "2026-11-29T09:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "enter_org: resolve the org context in one statement"

SQL = """
CREATE FUNCTION enter_org(p_slug text, p_user uuid, p_lock boolean)
RETURNS TABLE (org_id uuid, slug varchar, name varchar, membership_id uuid, role varchar)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_org uuid; v_slug varchar; v_name varchar; v_membership uuid; v_role varchar;
BEGIN
    PERFORM set_config('app.user_id', p_user::text, true);
    PERFORM set_config('app.org_id', '', true);
    SELECT o.id, o.slug, o.name, m.id, m.role
      INTO v_org, v_slug, v_name, v_membership, v_role
      FROM organization o JOIN membership m ON m.org_id = o.id AND m.user_id = p_user
     WHERE o.slug = p_slug;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM set_config('app.org_id', v_org::text, true);
    IF p_lock THEN
        PERFORM 1 FROM organization o WHERE o.id = v_org FOR NO KEY UPDATE;
        IF NOT FOUND THEN  -- deleted while we waited
            RETURN;
        END IF;
        SELECT m.role INTO v_role FROM membership m WHERE m.id = v_membership FOR SHARE;
        IF NOT FOUND THEN  -- removed while we waited
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT v_org, v_slug, v_name, v_membership, v_role;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
