"""Tidying after the ``(org_id, id)`` keys of ``2026-12-01T03``.

* Each tenant table there kept its older ``UNIQUE (org_id, id)`` beside the new primary key on the
  same columns, because composite foreign keys (``… REFERENCES agent (org_id, id)``) were bound to
  its index. Those foreign keys are dropped and added again exactly as they were — now bound to
  the primary key, the one unique index left on those columns — and the duplicates are dropped: one
  index fewer to write on every insert into those tables.
* ``erase_person`` joined the audit events it rewrites on ``id`` alone, which no index serves since
  the key became ``(org_id, id)``; it joins on both now. And it never set the regular expression
  for the person's address (``v_email_re`` stayed NULL), so in an event not about the person —
  a team's member list, a note — the address survived the erasure; it is set now: the address as
  a whole token, not inside a longer address.
"""

from portal.db.ddl import CURRENT_USER, raw_migration

ID = "2026-12-01T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "drop the unique constraints that duplicate tenant primary keys; erase_person joins on the key, finds the address"

# The address as a regular expression: every character but letters, digits, @, _, % and - escaped
# with a backslash (as in 2026-12-01T01, where it was defined but never assigned).
_ESCAPED_EMAIL = r"regexp_replace(v_email, '([^a-z0-9@_%-])', '\\\1', 'g')"

SQL = f"""
-- Re-adding a foreign key locks its tables and re-checks every row: fail (and run it again when
-- it's quiet) rather than queue the app's queries behind a long transaction.
SET LOCAL lock_timeout = '30s';

DO $$
DECLARE
    dup record; fk record; readd text[];
BEGIN
    FOR dup IN
        SELECT u.conrelid::regclass AS tbl, u.conname, u.conindid
        FROM pg_constraint u
        JOIN pg_constraint pk ON pk.conrelid = u.conrelid AND pk.contype = 'p'
        WHERE u.connamespace = 'public'::regnamespace AND u.contype = 'u'
          AND (SELECT array_agg(k ORDER BY k) FROM unnest(u.conkey) k) = (SELECT array_agg(k ORDER BY k) FROM unnest(pk.conkey) k)
    LOOP
        readd := ARRAY(
            SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', f.conrelid::regclass, f.conname, pg_get_constraintdef(f.oid))
            FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = dup.conindid
        );
        FOR fk IN SELECT f.conrelid::regclass AS tbl, f.conname FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = dup.conindid LOOP
            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
        END LOOP;
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', dup.tbl, dup.conname);
        FOR i IN 1 .. coalesce(array_length(readd, 1), 0) LOOP
            EXECUTE readd[i];
        END LOOP;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION erase_person(p_user uuid, p_pseudonym text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_email text; v_name text; v_tail text; v_email_re text;
    v_counts jsonb := '{{}}'::jsonb;
    v_n bigint;
BEGIN
    IF p_user IS DISTINCT FROM {CURRENT_USER} THEN
        RAISE EXCEPTION 'erase_person erases the signed-in person only';
    END IF;
    IF p_pseudonym !~ '^deleted-person-[0-9a-f]{{12}}$' THEN
        RAISE EXCEPTION 'erase_person: not a pseudonym';
    END IF;
    PERFORM set_config('app.erasing', 'on', true);
    SELECT email, name INTO v_email, v_name FROM app_user WHERE id = p_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'erase_person: no such account';
    END IF;
    -- Invites first, then the account: the order an acceptance takes (invite, then the account
    -- its new membership references), so the two never wait for each other in a circle.
    DELETE FROM invite WHERE email = v_email;
    GET DIAGNOSTICS v_n = ROW_COUNT; v_counts := v_counts || jsonb_build_object('invites_deleted', v_n);
    PERFORM 1 FROM app_user WHERE id = p_user FOR UPDATE;  -- no membership can be added from here on
    IF EXISTS (SELECT 1 FROM membership WHERE user_id = p_user) THEN
        RAISE EXCEPTION 'erase_person: the person still belongs to an organization' USING ERRCODE = 'object_in_use';
    END IF;
    v_tail := '<' || v_email || '>';
    -- the address, as a whole token (not inside a longer address)
    v_email_re := '(^|[^a-z0-9._%+-])' || {_ESCAPED_EMAIL} || '($|[^a-z0-9.-]|[.]($|[^a-z0-9]))';
    -- Rows only this person's email or id can select, matched before anything is rewritten.
    WITH about AS (
        SELECT org_id, id,
               (actor_id = p_user OR actor_email = v_email) AS acted,
               (target_label = v_email OR right(target_label, length(v_tail)) = v_tail) AS subject
        FROM audit_event
        WHERE actor_id = p_user OR actor_email = v_email
           OR target_label = v_email OR right(target_label, length(v_tail)) = v_tail
           OR strpos(before::text, v_email) > 0 OR strpos(after::text, v_email) > 0
    )
    UPDATE audit_event e SET
        actor_email = CASE WHEN a.acted THEN p_pseudonym ELSE e.actor_email END,
        ip = CASE WHEN a.acted THEN NULL ELSE e.ip END,
        target_label = CASE WHEN a.subject THEN p_pseudonym ELSE e.target_label END,
        before = erasure_value(e.before, v_email_re, v_name, p_pseudonym, a.subject, ''),
        after = erasure_value(e.after, v_email_re, v_name, p_pseudonym, a.subject, '')
    FROM about a WHERE e.org_id = a.org_id AND e.id = a.id;  -- the key is (org_id, id): id alone uses no index
    GET DIAGNOSTICS v_n = ROW_COUNT; v_counts := v_counts || jsonb_build_object('audit_events_pseudonymised', v_n);

    UPDATE mail_outbox SET subject = replace(subject, v_name, p_pseudonym)
        WHERE kind = 'invite' AND ref_id IN (SELECT id FROM invite WHERE invited_by = p_user);
    DELETE FROM mail_outbox WHERE recipient = v_email;
    DELETE FROM account_mail WHERE recipient = v_email;
    DELETE FROM login_attempt WHERE email = v_email;
    DELETE FROM api_idempotency WHERE position(convert_to(v_email, 'UTF8') IN body) > 0;
    UPDATE export_job SET requested_by_email = p_pseudonym WHERE requested_by_email = v_email;
    UPDATE api_token SET created_by_email = p_pseudonym WHERE created_by_email = v_email;
    UPDATE billing_settings SET billing_email = NULL WHERE billing_email = v_email;
    UPDATE deletion_receipt SET deleted_by_email = p_pseudonym WHERE deleted_by_email = v_email;
    DELETE FROM app_user WHERE id = p_user;  -- sessions go with it (cascade)

    PERFORM set_config('app.erasing', '', true);
    RETURN v_counts;
END
$$;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
