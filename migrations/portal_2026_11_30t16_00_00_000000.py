"""Custom roles (SPEC §13): an org's own rows of permissions, held by memberships and invites.

**``org_role``** is a tenant table like any resource: a name unique in the org (case-insensitive),
a description, and ``permissions``, a set drawn from the grantable permissions (``org.view`` is
implied; ``org.manage`` is never grantable: settings, transfer and deletion stay the owner's).

**Holding one**: ``membership.role`` and ``invite.role`` gain the value ``'custom'``, which names
the row in ``custom_role_id`` (and only then is there one). The foreign key includes ``org_id``,
so a membership can only ever hold a role of its own org, whatever the code does. A role with
holders or pending invites cannot be deleted (memberships: NO ACTION, checked at the end of the
statement, so deleting a whole organization still cascades; invites: a finished invite lets go of
the role, a pending one may not).

A person may read the name of a role they hold in any of their orgs (policy ``held_roles``, like
``own_memberships``), so the org switcher and the org list can name it.

**``enter_org``** returns the custom role's name and permissions with the membership, still one
statement (and one read: the role is joined to the membership). For unsafe requests it locks the
role row ``FOR SHARE`` after the org row and the membership, and reads it again; editing a role
takes it ``FOR UPDATE``. So an action that checked a permission commits before the edit does, or
waits and is refused under the edited permissions: never half of each. (Every writer of an org
takes the org row first, so the writes of one org never meet in different orders.)

An invitee's landing page may read the name of the one role its invite grants (policy
``invite_role_by_token``, like ``invite_by_token``), without entering the org.
"""

from portal.db.ddl import CURRENT_USER, raw_migration, tenant_rls

ID = "2026-11-30T16:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "custom roles"

GRANTABLE = ("resources.manage", "billing.manage", "audit.view", "export.use", "members.manage", "org.leave")

SQL = f"""
CREATE TABLE org_role (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    permissions varchar(32)[] NOT NULL DEFAULT '{{}}'
        CHECK (permissions <@ ARRAY[{", ".join(f"'{p}'" for p in GRANTABLE)}]::varchar(32)[]
               AND array_position(permissions, NULL) IS NULL),
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT org_role_org_id_id UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX org_role_org_name ON org_role (org_id, lower(name));
{tenant_rls("org_role")}
ALTER TABLE membership DROP CONSTRAINT membership_role_check;
ALTER TABLE membership ADD COLUMN custom_role_id uuid;
ALTER TABLE membership
    ADD CONSTRAINT membership_role_check
        CHECK (role IN ('owner', 'billing_admin', 'compliance_officer', 'member', 'custom')),
    ADD CONSTRAINT membership_custom_role_named CHECK ((role = 'custom') = (custom_role_id IS NOT NULL)),
    ADD CONSTRAINT membership_custom_role_same_org
        FOREIGN KEY (org_id, custom_role_id) REFERENCES org_role (org_id, id);
CREATE INDEX membership_custom_role ON membership (org_id, custom_role_id) WHERE custom_role_id IS NOT NULL;

ALTER TABLE invite DROP CONSTRAINT invite_role_check;
ALTER TABLE invite ADD COLUMN custom_role_id uuid;
ALTER TABLE invite
    ADD CONSTRAINT invite_role_check CHECK (role IN ('billing_admin', 'compliance_officer', 'member', 'custom')),
    ADD CONSTRAINT invite_custom_role_only_custom CHECK (custom_role_id IS NULL OR role = 'custom'),
    -- A pending invite names its role; a finished one (accepted, revoked, replaced) lets go of it
    -- when the role is deleted (SET NULL below), and keeps its name in the audit trail.
    ADD CONSTRAINT invite_pending_custom_role_named CHECK (
        role <> 'custom' OR custom_role_id IS NOT NULL
        OR accepted_at IS NOT NULL OR revoked_at IS NOT NULL OR superseded_at IS NOT NULL),
    ADD CONSTRAINT invite_custom_role_same_org
        FOREIGN KEY (org_id, custom_role_id) REFERENCES org_role (org_id, id) ON DELETE SET NULL (custom_role_id);
CREATE INDEX invite_custom_role ON invite (org_id, custom_role_id) WHERE custom_role_id IS NOT NULL;

-- Like own_memberships: a person may read the name of a role they hold in any of their orgs (the
-- org switcher and the org list name it before an org is chosen). Read-only, nothing else.
CREATE POLICY held_roles ON org_role FOR SELECT
    USING (id IN (SELECT m.custom_role_id FROM membership m
                  WHERE m.user_id = {CURRENT_USER} AND m.custom_role_id IS NOT NULL));

-- Like invite_by_token: the invitee's landing page names the role the invite grants, found by
-- the token's hash and nothing else (the one role of the one invite). Read-only.
CREATE POLICY invite_role_by_token ON org_role FOR SELECT
    USING (id IN (SELECT i.custom_role_id FROM invite i
                  WHERE i.token_hash = NULLIF(current_setting('app.invite_hash', true), '')
                    AND i.custom_role_id IS NOT NULL));
DROP FUNCTION enter_org(text, uuid, boolean, boolean);
CREATE FUNCTION enter_org(p_slug text, p_user uuid, p_lock boolean, p_my_orgs boolean)
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
      FROM organization o JOIN membership m ON m.org_id = o.id AND m.user_id = p_user
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
        SELECT m.role, m.custom_role_id INTO v_role, v_custom FROM membership m WHERE m.id = v_membership FOR SHARE;
        IF NOT FOUND THEN  -- removed while we waited
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
         WHERE m.user_id = p_user;
    END IF;
    RETURN QUERY SELECT v_org, v_slug, v_name, v_membership, v_role, v_my_orgs, v_custom, v_role_name, v_perms;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
