"""API tokens (SPEC §11): programs act in one org with a role, through ``/api/v1``.

**``api_token``** is a tenant table. Only the SHA-256 of a token is stored (``token_hash``); the
list shows ``prefix`` (``prt_`` and the first characters). A token holds a role like a membership
(a built-in role but owner, or a custom role of the same org through the composite foreign key),
expires within a year of its creation, and may be revoked. A custom role held by a live token
cannot be deleted; a revoked token lets go of it.

**``enter_token(slug, hash, lock)``** is ``enter_org`` for programs, one statement: the token is
found by its hash alone (policy ``token_by_hash``, like ``invite_by_token``), then the org is
entered and the token's role, its custom role's permissions, and its creator's membership (the
suspension rule: a token acts only while its creator could still grant its role) are read. Unsafe
requests lock, in ``enter_org``'s order, the org row ``FOR NO KEY UPDATE``, then the token row,
the creator's membership and the custom role ``FOR SHARE``: a revocation, a demotion of the
creator or a role edit either waits for the call or is seen by it. ``last_used_at`` is written at
most once a minute per token, not on every call. The function returns a status (``ok``,
``unknown``, ``revoked``, ``expired``, ``other_org``) so the app answers 401 or 404 without a
second query.

**Audit events** gain ``actor_token_id`` and ``actor_label``: an API call's events name the token
(and, as ``actor_id``/``actor_email``, the person who created it).
"""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-11-30T17:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "api tokens"

SQL = f"""
CREATE TABLE api_token (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    name varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    prefix varchar(16) NOT NULL,
    token_hash varchar(64) NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{{64}}$'),
    role varchar(32) NOT NULL CHECK (role IN ('billing_admin', 'compliance_officer', 'member', 'custom')),
    custom_role_id uuid,
    created_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    created_by_email varchar(320) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at timestamptz,
    revoked_by uuid REFERENCES app_user(id) ON DELETE SET NULL,
    CONSTRAINT api_token_org_id_id UNIQUE (org_id, id),
    CONSTRAINT api_token_custom_role_only_custom CHECK (custom_role_id IS NULL OR role = 'custom'),
    CONSTRAINT api_token_live_custom_role_named CHECK (role <> 'custom' OR custom_role_id IS NOT NULL OR revoked_at IS NOT NULL),
    CONSTRAINT api_token_custom_role_same_org
        FOREIGN KEY (org_id, custom_role_id) REFERENCES org_role (org_id, id) ON DELETE SET NULL (custom_role_id),
    CONSTRAINT api_token_lifetime CHECK (expires_at > created_at AND expires_at <= created_at + interval '366 days')
);
CREATE INDEX api_token_org_created ON api_token (org_id, created_at DESC, id DESC);
CREATE INDEX api_token_custom_role ON api_token (org_id, custom_role_id) WHERE custom_role_id IS NOT NULL;
{tenant_rls("api_token")}
-- The bearer's own token, found by its hash and nothing else, before any org is entered.
CREATE POLICY token_by_hash ON api_token FOR SELECT
    USING (token_hash = NULLIF(current_setting('app.token_hash', true), ''));

ALTER TABLE audit_event ADD COLUMN actor_token_id uuid, ADD COLUMN actor_label varchar(200);

CREATE FUNCTION enter_token(p_slug text, p_hash text, p_lock boolean)
RETURNS TABLE (status text, org_id uuid, slug varchar, name varchar, token_id uuid, token_name varchar,
               role varchar, custom_role_id uuid, role_name varchar, permissions varchar[],
               creator_id uuid, creator_email varchar, creator_role varchar, creator_permissions varchar[])
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    t record; v_org record; v_role_name varchar; v_perms varchar[];
    v_creator_role varchar; v_creator_custom uuid; v_creator_perms varchar[];
BEGIN
    PERFORM set_config('app.user_id', '', true);
    PERFORM set_config('app.org_id', '', true);
    PERFORM set_config('app.token_hash', p_hash, true);
    SELECT * INTO t FROM api_token a WHERE a.token_hash = p_hash;
    IF NOT FOUND THEN
        PERFORM set_config('app.token_hash', '', true);
        RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[];
        RETURN;
    END IF;
    PERFORM set_config('app.token_hash', '', true);
    PERFORM set_config('app.org_id', t.org_id::text, true);
    SELECT o.id, o.slug, o.name INTO v_org FROM organization o WHERE o.id = t.org_id;
    IF v_org.slug IS DISTINCT FROM p_slug THEN  -- a real token, of another org: as if the org did not exist
        PERFORM set_config('app.org_id', '', true);
        RETURN QUERY SELECT 'other_org'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[];
        RETURN;
    END IF;
    IF p_lock THEN
        PERFORM 1 FROM organization o WHERE o.id = t.org_id FOR NO KEY UPDATE;
        SELECT * INTO t FROM api_token a WHERE a.org_id = t.org_id AND a.id = t.id FOR SHARE;
        IF NOT FOUND THEN  -- the org (and its tokens) deleted while we waited
            RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
                NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[];
            RETURN;
        END IF;
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'revoked'::text, NULL::uuid, NULL::varchar, NULL::varchar, t.id, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[];
        RETURN;
    END IF;
    IF t.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, NULL::uuid, NULL::varchar, NULL::varchar, t.id, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[];
        RETURN;
    END IF;
    -- The creator's membership as it is now, then the token's custom role: membership before role.
    SELECT m.role, m.custom_role_id INTO v_creator_role, v_creator_custom
      FROM membership m WHERE m.org_id = t.org_id AND m.user_id = t.created_by;
    IF p_lock AND v_creator_role IS NOT NULL THEN
        SELECT m.role, m.custom_role_id INTO v_creator_role, v_creator_custom
          FROM membership m WHERE m.org_id = t.org_id AND m.user_id = t.created_by FOR SHARE;
    END IF;
    IF v_creator_custom IS NOT NULL THEN
        SELECT r.permissions INTO v_creator_perms FROM org_role r WHERE r.org_id = t.org_id AND r.id = v_creator_custom;
    END IF;
    IF t.custom_role_id IS NOT NULL THEN
        IF p_lock THEN
            SELECT r.name, r.permissions INTO v_role_name, v_perms
              FROM org_role r WHERE r.org_id = t.org_id AND r.id = t.custom_role_id FOR SHARE;
        ELSE
            SELECT r.name, r.permissions INTO v_role_name, v_perms
              FROM org_role r WHERE r.org_id = t.org_id AND r.id = t.custom_role_id;
        END IF;
    END IF;
    -- Cheap "last used": at most one write a minute per token.
    UPDATE api_token a SET last_used_at = now()
     WHERE a.org_id = t.org_id AND a.id = t.id AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute');
    RETURN QUERY SELECT 'ok'::text, v_org.id, v_org.slug, v_org.name, t.id, t.name, t.role, t.custom_role_id,
        v_role_name, v_perms, t.created_by, t.created_by_email, v_creator_role, v_creator_perms;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
