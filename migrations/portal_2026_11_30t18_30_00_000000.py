"""Suspended memberships (SPEC §12): a member an identity provider deactivated (SCIM
``active=false``) keeps their membership, role and history, and can do nothing in the org until
reactivated.

* ``membership.suspended_at``: set while suspended. The owner can never be suspended (a CHECK).
* ``membership.scim_managed``: the membership was provisioned by the org's SCIM service (the
  members page says so).
* ``enter_org`` finds only live memberships, re-checked under the membership's ``FOR SHARE`` lock
  for unsafe requests, so a suspension is refused on the very next request and an in-flight
  change either commits before it or is refused, like a removal. The org switcher leaves the org out.
* ``enter_token`` (next migration): a token whose creator is suspended acts like one whose
  creator was removed.
"""

from portal.db.ddl import raw_migration

ID = "2026-11-30T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "membership suspension"

SQL = """
ALTER TABLE membership
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN scim_managed boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT membership_owner_never_suspended CHECK (role <> 'owner' OR suspended_at IS NULL);

CREATE OR REPLACE FUNCTION enter_org(p_slug text, p_user uuid, p_lock boolean, p_my_orgs boolean)
RETURNS TABLE (org_id uuid, slug varchar, name varchar, membership_id uuid, role varchar, my_orgs jsonb,
               custom_role_id uuid, role_name varchar, permissions varchar[])
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_org uuid; v_slug varchar; v_name varchar; v_membership uuid; v_role varchar; v_my_orgs jsonb;
    v_custom uuid; v_role_name varchar; v_perms varchar[];
BEGIN
    PERFORM set_config('app.user_id', p_user::text, true);
    PERFORM set_config('app.org_id', '', true);
    -- The role's name and permissions in the same read as the membership (one snapshot: never
    -- a role the member no longer holds with permissions it has since gained). Visible before
    -- the tenant is set through held_roles: the member holds it.
    SELECT o.id, o.slug, o.name, m.id, m.role, m.custom_role_id, r.name, r.permissions
      INTO v_org, v_slug, v_name, v_membership, v_role, v_custom, v_role_name, v_perms
      FROM organization o JOIN membership m ON m.org_id = o.id AND m.user_id = p_user AND m.suspended_at IS NULL
      LEFT JOIN org_role r ON r.org_id = o.id AND r.id = m.custom_role_id
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
        SELECT m.role, m.custom_role_id INTO v_role, v_custom FROM membership m
         WHERE m.id = v_membership AND m.suspended_at IS NULL FOR SHARE;
        IF NOT FOUND THEN  -- removed or suspended while we waited
            RETURN;
        END IF;
        v_role_name := NULL; v_perms := NULL;
        IF v_custom IS NOT NULL THEN  -- its permissions as they are once no edit is in flight
            SELECT r.name, r.permissions INTO v_role_name, v_perms
              FROM org_role r WHERE r.org_id = v_org AND r.id = v_custom FOR SHARE;
        END IF;
    END IF;
    IF p_my_orgs THEN  -- the user's own memberships (policy own_memberships), as the switcher lists them
        SELECT coalesce(jsonb_agg(jsonb_build_object('slug', o.slug, 'name', o.name, 'role', m.role, 'role_name', r.name)
                                  ORDER BY lower(o.name), o.slug), '[]'::jsonb)
          INTO v_my_orgs
          FROM membership m JOIN organization o ON o.id = m.org_id
          LEFT JOIN org_role r ON r.org_id = m.org_id AND r.id = m.custom_role_id
         WHERE m.user_id = p_user AND m.suspended_at IS NULL;
    END IF;
    RETURN QUERY SELECT v_org, v_slug, v_name, v_membership, v_role, v_my_orgs, v_custom, v_role_name, v_perms;
END
$$;

"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
