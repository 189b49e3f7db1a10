"""Token lookups by hash that hold when a hash is unique per org only.

Since ``2026-12-01T03`` an API token's hash (agent and SCIM tokens are API tokens too) is unique
per org, not across orgs. 256 random bits never collide, but the lookups by hash alone must not
depend on it: ``enter_token`` took the first row it met (a token of the wrong org) and
``touch_api_token`` failed on a subquery returning two rows (a 500). Both now act only when
exactly one token has the hash; ``enter_token`` answers ``unknown`` otherwise (a 401).
(The invite lookup by hash checks the same in ``portal/invites/service.py``.)
"""

from portal.db.ddl import raw_migration

ID = "2026-12-01T04:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "token lookups by hash refuse a hash two orgs hold"

SQL = """
CREATE OR REPLACE FUNCTION touch_api_token(p_hash text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE v_org uuid; v_id uuid; v_matches bigint;
BEGIN
    PERFORM set_config('app.token_hash', p_hash, true);
    SELECT x.org_id, x.id, count(*) OVER () INTO v_org, v_id, v_matches FROM api_token x WHERE x.token_hash = p_hash LIMIT 1;
    IF v_matches = 1 THEN  -- never waits: a row locked by a call in flight or a revocation is skipped
        UPDATE api_token a SET last_used_at = now()
         WHERE (a.org_id, a.id) = (SELECT x.org_id, x.id FROM api_token x
                                    WHERE x.org_id = v_org AND x.id = v_id AND x.revoked_at IS NULL AND x.expires_at > now()
                                      AND (x.last_used_at IS NULL OR x.last_used_at < now() - interval '1 minute')
                                    FOR NO KEY UPDATE SKIP LOCKED);
    END IF;
    PERFORM set_config('app.token_hash', '', true);
END
$$;

CREATE OR REPLACE FUNCTION enter_token(p_slug text, p_hash text, p_lock boolean)
RETURNS TABLE (status text, org_id uuid, slug varchar, name varchar, token_id uuid, token_name varchar,
               role varchar, custom_role_id uuid, role_name varchar, permissions varchar[],
               creator_id uuid, creator_email varchar, creator_role varchar, creator_permissions varchar[],
               agent_id uuid, agent_name varchar, agent_status varchar)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
DECLARE
    t record; v_org record; v_role_name varchar; v_perms varchar[];
    v_agent_id uuid; v_agent_name varchar; v_agent_status varchar;
    v_creator_role varchar; v_creator_custom uuid; v_creator_perms varchar[];
BEGIN
    PERFORM set_config('app.user_id', '', true);
    PERFORM set_config('app.org_id', '', true);
    PERFORM set_config('app.token_hash', p_hash, true);
    -- The hash is unique per org only: a hash that more than one org holds names no one token.
    SELECT a.*, count(*) OVER () AS matches INTO t FROM api_token a WHERE a.token_hash = p_hash LIMIT 1;
    IF NOT FOUND OR t.matches > 1 THEN
        PERFORM set_config('app.token_hash', '', true);
        RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    PERFORM set_config('app.token_hash', '', true);
    PERFORM set_config('app.org_id', t.org_id::text, true);
    SELECT o.id, o.slug, o.name INTO v_org FROM organization o WHERE o.id = t.org_id;
    IF v_org.slug IS DISTINCT FROM p_slug THEN  -- a real token, of another org: as if the org did not exist
        PERFORM set_config('app.org_id', '', true);
        RETURN QUERY SELECT 'other_org'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF p_lock THEN
        PERFORM 1 FROM organization o WHERE o.id = t.org_id FOR NO KEY UPDATE;
        SELECT * INTO t FROM api_token a WHERE a.org_id = t.org_id AND a.id = t.id FOR SHARE;
        IF NOT FOUND THEN  -- the org (and its tokens) deleted while we waited
            RETURN QUERY SELECT 'unknown'::text, NULL::uuid, NULL::varchar, NULL::varchar, NULL::uuid, NULL::varchar,
                NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar;
            RETURN;
        END IF;
    END IF;
    IF t.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'revoked'::text, NULL::uuid, NULL::varchar, NULL::varchar, t.id, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    IF t.expires_at <= now() THEN
        RETURN QUERY SELECT 'expired'::text, NULL::uuid, NULL::varchar, NULL::varchar, t.id, NULL::varchar,
            NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar;
        RETURN;
    END IF;
    -- The creator's live membership as it is now (a suspended one counts as none), then the
    -- token's custom role: membership before role.
    SELECT m.role, m.custom_role_id INTO v_creator_role, v_creator_custom
      FROM membership m WHERE m.org_id = t.org_id AND m.user_id = t.created_by AND m.suspended_at IS NULL;
    IF p_lock AND v_creator_role IS NOT NULL THEN
        SELECT m.role, m.custom_role_id INTO v_creator_role, v_creator_custom
          FROM membership m WHERE m.org_id = t.org_id AND m.user_id = t.created_by AND m.suspended_at IS NULL FOR SHARE;
    END IF;
    IF v_creator_custom IS NOT NULL THEN
        IF p_lock THEN
            SELECT r.permissions INTO v_creator_perms FROM org_role r WHERE r.org_id = t.org_id AND r.id = v_creator_custom FOR SHARE;
        ELSE
            SELECT r.permissions INTO v_creator_perms FROM org_role r WHERE r.org_id = t.org_id AND r.id = v_creator_custom;
        END IF;
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
    -- An agent's token acts while its agent is there and active: the agent row, read (and for
    -- unsafe calls locked FOR SHARE, after the creator's membership) in this same statement, so
    -- a pause either waits for the call or is seen by it.
    IF t.role = 'agent' THEN
        IF p_lock THEN
            SELECT a.id, a.name, a.status INTO v_agent_id, v_agent_name, v_agent_status FROM agent a WHERE a.org_id = t.org_id AND a.id = t.agent_id FOR SHARE;
        ELSE
            SELECT a.id, a.name, a.status INTO v_agent_id, v_agent_name, v_agent_status FROM agent a WHERE a.org_id = t.org_id AND a.id = t.agent_id;
        END IF;
        IF NOT FOUND THEN  -- deleted (its tokens are revoked with it; this is a second wall)
            RETURN QUERY SELECT 'revoked'::text, NULL::uuid, NULL::varchar, NULL::varchar, t.id, NULL::varchar,
                NULL::varchar, NULL::uuid, NULL::varchar, NULL::varchar[], NULL::uuid, NULL::varchar, NULL::varchar, NULL::varchar[],
                NULL::uuid, NULL::varchar, NULL::varchar;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'ok'::text, v_org.id, v_org.slug, v_org.name, t.id, t.name, t.role, t.custom_role_id,
        v_role_name, v_perms, t.created_by, t.created_by_email, v_creator_role, v_creator_perms,
        v_agent_id, v_agent_name, v_agent_status;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
