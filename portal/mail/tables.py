"""The mail outbox (DDL and policies: migrations/portal_2026_12_01t00_00_00_000000.py).

An org's mail is a tenant row; a person's mail outside any org (a confirmation link, a password
reset) is a global row of the same shape.
"""

from __future__ import annotations

from piccolo.columns import UUID, Bytea, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.table import Table

from portal.db.registry import global_table, tenant_table
from portal.db.tables import Organization

STATUSES = ("queued", "sending", "sent", "dead", "cancelled")


class _Mail(Table):
    id = UUID(primary_key=True)
    kind = Varchar(length=40)
    ref_id = UUID(null=True, default=None)
    recipient = Varchar(length=320)
    subject = Varchar(length=300)
    payload = Bytea(null=True, default=None)
    status = Varchar(length=10, default="queued")
    attempts = Integer(default=0)
    attempt_limit = Integer(null=True, default=None)
    run_after = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)
    last_error = Varchar(length=300, null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


@tenant_table
class MailOutbox(_Mail, tablename="mail_outbox"):
    """An org's mail: an invite, a SCIM welcome."""

    org_id = ForeignKey(references=Organization, null=False, index=True)


@global_table("A person's mail outside any organization (confirmation links, password resets), like the accounts it is about.")
class AccountMail(_Mail, tablename="account_mail"):
    """Mail about an account, before or outside any org."""
