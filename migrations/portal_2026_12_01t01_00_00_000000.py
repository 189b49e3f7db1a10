"""A person's erasure (SPEC §14): ``erase_person`` replaces what the database holds of a deleted
account, in every org, with a stable pseudonym — or deletes it where nothing needs keeping — and
deletes the account.

The app role first ends the person's memberships itself, org by org, through the scope (audited in
each). What remains is spread over orgs the person may no longer belong to (invites to their
address, the audit trail of what they did or what was done to them, exports they asked for) and
over append-only rows the app role may never change. So this one function does the rest:

* ``SECURITY DEFINER``: it runs as the owner role. The owner is subject to the forced row-level
  security like everyone else; the ``erasure_*`` policies below admit it — and only it (``TO`` the
  owner, never the app role) — while the function has set ``app.erasing`` in its transaction.
* It takes nothing on trust but the account id: it erases only the signed-in person
  (``app.user_id``), only once they belong to no org, reads their email and name from their own
  row, accepts only a pseudonym of the expected form, and deletes the account row itself.
* **Audit events** keep their place in each org's history, matched by what identifies the person
  — the actor id, their (unique) email as the actor, as a label ("Name <email>") or inside a value
  — never by the name alone (names are not unique, and free to choose). In those events the email
  and, where the person is the subject, their name and identity attributes become the pseudonym;
  the IP address of what they did is cleared.
* Invites to the address, queued mail to it, its sign-in attempts and the API replies that
  mention it are deleted; exports and API tokens they requested keep the pseudonym; an org's
  billing email that was theirs is cleared; the subject of mail about invites they sent loses
  their name.
"""

from portal.db.ddl import CURRENT_USER, raw_migration

ID = "2026-12-01T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "erase_person: a deleted account's data, pseudonymised or deleted"

_ERASING = "current_setting('app.erasing', true) = 'on'"

_POLICIES = [  # (table, commands)
    ("audit_event", ("SELECT", "UPDATE")),
    ("invite", ("SELECT", "DELETE")),
    ("export_job", ("SELECT", "UPDATE")),
    ("api_token", ("SELECT", "UPDATE")),
    ("api_idempotency", ("SELECT", "DELETE")),
    ("mail_outbox", ("SELECT", "UPDATE", "DELETE")),
    ("billing_settings", ("SELECT", "UPDATE")),
    ("membership", ("SELECT",)),
]

_CREATE_POLICIES = "\n".join(
    f"    EXECUTE format('CREATE POLICY erasure_{command.lower()} ON {table} FOR {command} TO %I USING ({_ERASING.replace(chr(39), chr(39) * 2)})', current_user);"
    for table, commands in _POLICIES
    for command in commands
)

SQL = f"""
DO $$
BEGIN
{_CREATE_POLICIES}
END
$$;

-- One audit value with the person taken out: a string that holds their email (alone, in a label
-- "Name <email>", in a JSON-encoded list) becomes the pseudonym; so does, when the person is the
-- event's subject, a value under a key that names an identity attribute (name, email, userName,
-- externalId…) or one equal to their name. Objects and arrays are walked.
CREATE FUNCTION erasure_value(p_value jsonb, p_email_re text, p_name text, p_alias text, p_subject boolean, p_key text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = public, pg_temp
AS $$
    SELECT CASE jsonb_typeof(p_value)
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(k, erasure_value(v, p_email_re, p_name, p_alias, p_subject, k))
            FROM jsonb_each(p_value) AS e(k, v)), '{{}}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(erasure_value(v, p_email_re, p_name, p_alias, p_subject, p_key) ORDER BY n)
            FROM jsonb_array_elements(p_value) WITH ORDINALITY AS a(v, n)), '[]'::jsonb)
        WHEN 'string' THEN CASE
            WHEN (p_value #>> '{{}}') ~* p_email_re THEN to_jsonb(p_alias)
            WHEN p_subject AND ((p_value #>> '{{}}') = p_name OR p_key ~* '(name|email|externalid)') THEN to_jsonb(p_alias)
            ELSE p_value END
        ELSE p_value
    END
$$;

CREATE FUNCTION erase_person(p_user uuid, p_pseudonym text)
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
    v_tail := '<' || v_email || '>';  -- (v_email_re is set by 2026-12-01T05, which fixed its omission here)
    -- Rows only this person's email or id can select, matched before anything is rewritten.
    WITH about AS (
        SELECT id,
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
    FROM about a WHERE e.id = a.id;
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
REVOKE ALL ON FUNCTION erase_person(uuid, text) FROM PUBLIC;
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
