"""A person's erasure (SPEC §14): ``erase_person`` replaces what the database holds of a deleted
account, in every org, with a stable pseudonym — or deletes it where nothing needs keeping.

The app role deletes the person's memberships itself, org by org, through the scope (audited in
each). What remains is spread over orgs the person may no longer belong to (invites to their
address, the audit trail of what they did or what was done to them, exports they asked for) and
over append-only rows the app role may never change. So this one function does it:

* ``SECURITY DEFINER``: it runs as the owner role. The owner is subject to the forced row-level
  security like everyone else; the ``erasure`` policies below admit it — and only it (``TO`` the
  owner, never the app role) — while the function has set ``app.erasing`` in its transaction.
* It erases only the signed-in person (``app.user_id``, set by the app for the request) and only
  once their account row is locked by that same transaction.
* Audit events keep their place in each org's history: the person's email and name (as the actor,
  the target label, or a value in ``before``/``after``) become the pseudonym. Invites to the
  address, queued mail to it and its sign-in attempts are deleted; exports and API tokens they
  requested keep the pseudonym; an org's billing email that was theirs is cleared.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

from portal.db.ddl import CURRENT_USER, execute

ID = "2026-12-01T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "erase_person: a deleted account's data, pseudonymised or deleted"

_ERASING = "current_setting('app.erasing', true) = 'on'"
_POLICIES = [  # (table, commands)
    ("audit_event", ("SELECT", "UPDATE")),
    ("invite", ("SELECT", "DELETE")),
    ("export_job", ("SELECT", "UPDATE")),
    ("api_token", ("SELECT", "UPDATE")),
    ("mail_outbox", ("SELECT", "DELETE")),
    ("billing_settings", ("SELECT", "UPDATE")),
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

CREATE FUNCTION erase_person(p_user uuid, p_email text, p_name text, p_pseudonym text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_email_json text := to_jsonb(p_email)::text;
    v_name_json text := to_jsonb(p_name)::text;
    v_alias_json text := to_jsonb(p_pseudonym)::text;
    v_tail text := '<' || p_email || '>';  -- a label "Name <email>"
    v_counts jsonb := '{{}}'::jsonb;
    v_n bigint;
BEGIN
    IF p_user IS DISTINCT FROM {CURRENT_USER} THEN
        RAISE EXCEPTION 'erase_person erases the signed-in person only';
    END IF;
    PERFORM 1 FROM app_user WHERE id = p_user AND email = p_email FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'erase_person: no such account';
    END IF;
    PERFORM set_config('app.erasing', 'on', true);

    UPDATE audit_event SET
        actor_email = CASE WHEN actor_id = p_user OR actor_email = p_email THEN p_pseudonym ELSE actor_email END,
        target_label = CASE WHEN target_label IN (p_email, p_name) OR right(target_label, length(v_tail)) = v_tail
                            THEN p_pseudonym ELSE target_label END,
        before = replace(replace(before::text, v_email_json, v_alias_json), v_name_json, v_alias_json)::jsonb,
        after = replace(replace(after::text, v_email_json, v_alias_json), v_name_json, v_alias_json)::jsonb
    WHERE actor_id = p_user OR actor_email = p_email
       OR target_label IN (p_email, p_name) OR right(target_label, length(v_tail)) = v_tail
       OR strpos(before::text, v_email_json) > 0 OR strpos(after::text, v_email_json) > 0
       OR strpos(before::text, v_name_json) > 0 OR strpos(after::text, v_name_json) > 0;
    GET DIAGNOSTICS v_n = ROW_COUNT; v_counts := v_counts || jsonb_build_object('audit_events_pseudonymised', v_n);

    DELETE FROM invite WHERE email = p_email;
    GET DIAGNOSTICS v_n = ROW_COUNT; v_counts := v_counts || jsonb_build_object('invites_deleted', v_n);
    DELETE FROM mail_outbox WHERE recipient = p_email;
    DELETE FROM account_mail WHERE recipient = p_email;
    DELETE FROM login_attempt WHERE email = p_email;
    UPDATE export_job SET requested_by_email = p_pseudonym WHERE requested_by_email = p_email;
    UPDATE api_token SET created_by_email = p_pseudonym WHERE created_by_email = p_email;
    UPDATE billing_settings SET billing_email = NULL WHERE billing_email = p_email;
    UPDATE deletion_receipt SET deleted_by_email = p_pseudonym WHERE deleted_by_email = p_email;

    PERFORM set_config('app.erasing', '', true);
    RETURN v_counts;
END
$$;
REVOKE ALL ON FUNCTION erase_person(uuid, text, text, text) FROM PUBLIC;
"""


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="portal", description=DESCRIPTION)

    async def run():
        await execute(SQL)

    manager.add_raw(run)
    return manager
