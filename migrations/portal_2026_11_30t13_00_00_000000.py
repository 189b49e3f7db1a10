"""Member count on the organization row, and ``enter_org`` that also returns the switcher's list.

**``organization.member_count``** is what people see (members page, dashboard): exact, and read
in one row whatever the org's size. Counting on every page walked every membership of the org
under two OR-ed RLS policies (~6 ms at 10,000 members).

It is kept by statement-level triggers on ``membership`` INSERT and DELETE, in the changing
statement's own transaction, so every way a membership comes or goes counts: invite acceptance,
org creation, removal, leaving, the org deletion cascade, ``portal demo``, and the superuser's
bulk inserts (seeding, test fixtures). Statement-level with transition tables: a bulk insert of
100,000 memberships is one grouped UPDATE, not 100,000.

* RLS: the trigger runs as the caller. The app role may update only its current tenant's org row
  (policy ``org_change``), and it can only insert or delete memberships of that same tenant, so
  the two always agree. Should a change ever reach another org's memberships (a cascade from an
  account deletion, say), the count could not follow: the trigger raises instead of drifting.
* Lock order: the update takes the org row ``FOR NO KEY UPDATE``. Unsafe org requests already hold
  it (``enter_org``), and org creation and deletion hold their own new or doomed row. Invite
  acceptance did not: it updated the invite row first and would now want the org row second,
  while an owner revoking or resending that invite holds the org row and waits for the invite
  row — a deadlock. So accepting an invite (an UPDATE that sets ``accepted_at``) first takes the
  org row, like every other write of an org: org row, then invite, then membership.
* The column changes only through these triggers (any other update of it raises), never
  below zero.

**``enter_org``** gains ``p_my_orgs``: for page loads it also returns the signed-in user's org
list (slug, name, role; the switcher in the layout), one round trip fewer per page. Everything
else is as before (migrations/…09_45…): the same membership read, locks and order, and no row
at all for an unknown org or a non-member.

The backfill runs with RLS not forced on the two tables (the owner role then ignores its own
policies); the ALTERs hold both tables exclusively until this transaction commits, so no
membership changes between the count and the trigger's first run.
"""

from portal.db.ddl import CURRENT_ORG, raw_migration

ID = "2026-11-30T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "organization.member_count; enter_org returns the org list"

SQL = f"""
ALTER TABLE organization NO FORCE ROW LEVEL SECURITY;
ALTER TABLE membership NO FORCE ROW LEVEL SECURITY;

ALTER TABLE organization ADD COLUMN member_count integer NOT NULL DEFAULT 0
    CONSTRAINT organization_member_count_not_negative CHECK (member_count >= 0);
UPDATE organization o SET member_count = c.n
  FROM (SELECT org_id, count(*)::integer AS n FROM membership GROUP BY org_id) c
 WHERE o.id = c.org_id;

CREATE FUNCTION membership_count() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_sign integer := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
    v_orgs integer;
    v_updated integer;
BEGIN
    WITH per_org AS (SELECT org_id, count(*)::integer AS n FROM changed GROUP BY org_id),
         updated AS (
             UPDATE organization o SET member_count = o.member_count + v_sign * per_org.n
               FROM per_org WHERE o.id = per_org.org_id
             RETURNING o.id)
    SELECT (SELECT count(*) FROM per_org), (SELECT count(*) FROM updated) INTO v_orgs, v_updated;
    -- An org row that still exists but was not updated is hidden by RLS: never let it drift.
    -- (A deleted org's row is simply gone: its memberships are going with it.)
    IF v_updated < v_orgs THEN
        IF v_updated < (SELECT count(*) FROM organization WHERE id IN (SELECT org_id FROM changed)) THEN
            RAISE EXCEPTION 'membership change outside the current organization: its member count cannot follow'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER membership_counted_insert AFTER INSERT ON membership
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION membership_count();
CREATE TRIGGER membership_counted_delete AFTER DELETE ON membership
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION membership_count();

CREATE FUNCTION refuse_member_count_write() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'organization.member_count is kept by the membership triggers'
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- pg_trigger_depth() is 0 for a statement of its own, 1 inside membership_count().
CREATE TRIGGER member_count_only_by_trigger BEFORE UPDATE OF member_count ON organization
    FOR EACH ROW WHEN (pg_trigger_depth() = 0 AND OLD.member_count IS DISTINCT FROM NEW.member_count)
    EXECUTE FUNCTION refuse_member_count_write();

CREATE FUNCTION lock_current_org() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
BEGIN
    -- The invite rows this statement may change are the current tenant's (RLS): lock its org
    -- row before any of them. No tenant set (the superuser): nothing to order.
    PERFORM 1 FROM organization WHERE id = {CURRENT_ORG} FOR NO KEY UPDATE;
    RETURN NULL;
END
$$;
CREATE TRIGGER invite_acceptance_locks_org_first BEFORE UPDATE OF accepted_at ON invite
    FOR EACH STATEMENT EXECUTE FUNCTION lock_current_org();

ALTER TABLE organization FORCE ROW LEVEL SECURITY;
ALTER TABLE membership FORCE ROW LEVEL SECURITY;

DROP FUNCTION enter_org(text, uuid, boolean);
CREATE FUNCTION enter_org(p_slug text, p_user uuid, p_lock boolean, p_my_orgs boolean)
RETURNS TABLE (org_id uuid, slug varchar, name varchar, membership_id uuid, role varchar, my_orgs jsonb)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_org uuid; v_slug varchar; v_name varchar; v_membership uuid; v_role varchar; v_my_orgs jsonb;
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
    IF p_my_orgs THEN  -- the user's own memberships (policy own_memberships), as the switcher lists them
        SELECT coalesce(jsonb_agg(jsonb_build_object('slug', o.slug, 'name', o.name, 'role', m.role)
                                  ORDER BY lower(o.name), o.slug), '[]'::jsonb)
          INTO v_my_orgs
          FROM membership m JOIN organization o ON o.id = m.org_id
         WHERE m.user_id = p_user;
    END IF;
    RETURN QUERY SELECT v_org, v_slug, v_name, v_membership, v_role, v_my_orgs;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
