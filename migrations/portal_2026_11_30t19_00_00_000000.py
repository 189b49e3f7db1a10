"""Agent identities (SPEC §11): tokens issued to one of the org's agents, acting as that agent.

An agent's token is an ``api_token`` row with ``role = 'agent'`` and ``agent_id`` naming the agent
(the composite foreign key keeps it in the token's org). It carries no role of a person: it may
read its own agent, that agent's workflows and the non-secret config of the connections they
use, and record ``agent.*`` audit events (``portal.api.agent``), nothing else.

* **Paused agent → suspended tokens.** ``enter_token`` reads the agent in the same statement and
  returns its status; the app answers 401 while it is not ``active``. Unsafe calls lock the agent
  row ``FOR SHARE`` (after the org, the token and the creator's membership), and pausing locks it
  ``FOR UPDATE``: a pause waits for an in-flight call or the call sees the pause.
* **Last used** moves out of ``enter_token`` (where it held the token's row lock until the call's
  transaction ended) into ``touch_api_token``, run by the autocommitted statement that counts the
  call.
* **Deleted agent → revoked tokens.** The foreign key sets ``agent_id`` to NULL when the agent
  goes, and the trigger ``api_token_agent_gone`` stamps ``revoked_at`` in the same statement, so
  the tokens stay listed as revoked and can never act again, whatever deleted the agent.
"""

from portal.db.ddl import raw_migration

ID = "2026-11-30T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "agent tokens"

SQL = """
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token
    ADD CONSTRAINT api_token_role_check CHECK (role IN ('billing_admin', 'compliance_officer', 'member', 'custom', 'agent')),
    ADD COLUMN agent_id uuid,
    ADD CONSTRAINT api_token_agent_only_agent CHECK (agent_id IS NULL OR role = 'agent'),
    ADD CONSTRAINT api_token_live_agent_named CHECK (role <> 'agent' OR agent_id IS NOT NULL OR revoked_at IS NOT NULL),
    ADD CONSTRAINT api_token_agent_same_org
        FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id) ON DELETE SET NULL (agent_id);
CREATE INDEX api_token_agent ON api_token (org_id, agent_id, created_at DESC) WHERE agent_id IS NOT NULL;

CREATE FUNCTION api_token_agent_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role = 'agent' AND NEW.agent_id IS NULL AND NEW.revoked_at IS NULL THEN
        NEW.revoked_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER api_token_agent_gone BEFORE UPDATE OF agent_id ON api_token
    FOR EACH ROW EXECUTE FUNCTION api_token_agent_gone();

-- "Last used", written by ``touch_api_token`` in the autocommitted statement that counts the call
-- (``portal.api.limits``), before the request's transaction: at most once a minute per token, and
-- never holding the token's row lock for the length of a request. The token is found by its hash
-- alone, like ``enter_token`` finds it.
CREATE POLICY token_touch ON api_token FOR UPDATE
    USING (token_hash = NULLIF(current_setting('app.token_hash', true), ''));
-- With a token's hash alone (no org entered), nothing but ``last_used_at`` may change: the policy
-- above can't say which columns, so this trigger does.
CREATE FUNCTION api_token_touch_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NULLIF(current_setting('app.token_hash', true), '') IS NOT NULL
       AND NULLIF(current_setting('app.org_id', true), '') IS NULL
       AND to_jsonb(NEW) - 'last_used_at' IS DISTINCT FROM to_jsonb(OLD) - 'last_used_at' THEN
        RAISE EXCEPTION 'api_token: outside an organization only last_used_at may change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER api_token_touch_only BEFORE UPDATE ON api_token FOR EACH ROW EXECUTE FUNCTION api_token_touch_only();

-- Never waits: a token row locked by a call in flight (FOR SHARE) or a revocation is skipped, and
-- its last use noted on a later call.
CREATE FUNCTION touch_api_token(p_hash text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM set_config('app.token_hash', p_hash, true);
    UPDATE api_token a SET last_used_at = now()
     WHERE a.id = (SELECT x.id FROM api_token x
                    WHERE x.token_hash = p_hash AND x.revoked_at IS NULL AND x.expires_at > now()
                      AND (x.last_used_at IS NULL OR x.last_used_at < now() - interval '1 minute')
                    FOR NO KEY UPDATE SKIP LOCKED);
    PERFORM set_config('app.token_hash', '', true);
END
$$;

DROP FUNCTION enter_token(text, text, boolean);
CREATE FUNCTION enter_token(p_slug text, p_hash text, p_lock boolean)
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
    SELECT * INTO t FROM api_token a WHERE a.token_hash = p_hash;
    IF NOT FOUND THEN
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
