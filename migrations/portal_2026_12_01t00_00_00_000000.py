"""The mail outbox (SPEC §15): every mail is a row written in the transaction of the change that
causes it, and a worker delivers it after the commit.

* ``mail_outbox``, a tenant table: an org's mail (an invite, a SCIM welcome), under the one tenant
  policy. The invites page reads its delivery state through the scope; deleting the org deletes it.
* ``account_mail``, a global table: a person's mail before or outside any org (a confirmation
  link, a password reset, a sign-up warning), like the accounts it is about.
* The worker discovers due org mail across orgs only in a transaction that sets
  ``app.mail_worker`` (read-only, like the export worker's queue) and claims a row inside that
  org's tenant transaction (``FOR UPDATE SKIP LOCKED``); it may purge finished rows.
* ``payload`` (the bodies, whose links are live credentials) is sealed with AES-GCM under a key
  derived from ``SECRET_KEY``, bound to the row, and wiped once the mail is sent or cancelled.
"""

from portal.db.ddl import raw_migration, tenant_rls

ID = "2026-12-01T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the transactional mail outbox"

_WORKER = "current_setting('app.mail_worker', true) = 'on'"

_COLUMNS = """
    kind varchar(40) NOT NULL,
    ref_id uuid,
    recipient varchar(320) NOT NULL,
    subject varchar(300) NOT NULL,
    payload bytea,
    status varchar(10) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'dead', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    attempt_limit integer,  -- set by a retry: attempts it may reach (else MAIL_MAX_ATTEMPTS)
    run_after timestamptz NOT NULL,
    lease_until timestamptz,
    last_error varchar(300),
    created_at timestamptz NOT NULL,
    sent_at timestamptz,
    -- What is still to be sent has its message; what is done has none; a dead letter may keep
    -- it for a retry (an org's) or not (a person's: nobody can retry it).
    CHECK ((status IN ('queued', 'sending') AND payload IS NOT NULL)
           OR (status IN ('sent', 'cancelled') AND payload IS NULL) OR status = 'dead')
"""

SQL = f"""
CREATE TABLE mail_outbox (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organization(id) ON DELETE CASCADE,
    {_COLUMNS},
    CONSTRAINT mail_outbox_org_id_id UNIQUE (org_id, id)
);
-- The delivery state of one invite (or one member's welcome), newest first.
CREATE INDEX mail_outbox_ref ON mail_outbox (org_id, ref_id, created_at DESC);
-- The worker's queue: due mail, and mail whose sender's lease ran out (its process died).
CREATE INDEX mail_outbox_due ON mail_outbox (run_after) WHERE status IN ('queued', 'sending');
-- Finished rows, purged after a while.
CREATE INDEX mail_outbox_finished ON mail_outbox (created_at) WHERE status IN ('sent', 'cancelled', 'dead');
{tenant_rls("mail_outbox")}
CREATE POLICY mail_outbox_worker_queue ON mail_outbox FOR SELECT
    USING ({_WORKER});
CREATE POLICY mail_outbox_worker_purge ON mail_outbox FOR DELETE
    USING ({_WORKER} AND status IN ('sent', 'cancelled', 'dead'));

CREATE TABLE account_mail (
    id uuid PRIMARY KEY,
    {_COLUMNS}
);
CREATE INDEX account_mail_due ON account_mail (run_after) WHERE status IN ('queued', 'sending');
CREATE INDEX account_mail_finished ON account_mail (created_at) WHERE status IN ('sent', 'cancelled', 'dead');
"""


forwards = raw_migration(ID, DESCRIPTION, SQL)
