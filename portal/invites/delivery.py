"""Emailing an invite after its transaction has committed.

The org middleware commits an org request only after the handler has returned (and Litestar runs
a response's ``BackgroundTask`` *inside* that call, i.e. before the commit). So the handler starts
a background task instead, and the task's first step waits for the creating transaction to end:
that transaction holds the org row ``FOR NO KEY UPDATE`` (``service._lock_org``), and the task
asks for it ``FOR SHARE``. Once granted, the invite row is either committed — and the mail goes
out — or rolled back, revoked or replaced, and nothing is sent.

The outcome lands on the row: ``last_sent_at`` on success, ``send_error`` (a short reason, shown
to the owner) on failure. The token is held only in memory here; if delivery fails it is dropped,
and a resend makes a new one.
"""

from __future__ import annotations

import logging

from portal import clock, humanize, mail
from portal.db import engine as db
from portal.invites.service import PENDING, Outgoing, hash_token, invite_link
from portal.mail import background
from portal.tenancy import scope as tenancy
from portal.tenancy.permissions import ROLE_LABELS, Role

log = logging.getLogger("portal.invites")

LOCK_WAIT = "30s"  # longer than any org request should ever hold its transaction

_FOR_MAIL = f"""
SELECT i.email, i.role, r.name AS role_name, i.expires_at, o.name AS org_name, u.name AS inviter_name,
       u.email AS inviter_email
FROM invite i
JOIN organization o ON o.id = i.org_id
LEFT JOIN app_user u ON u.id = i.invited_by
LEFT JOIN org_role r ON r.org_id = i.org_id AND r.id = i.custom_role_id
WHERE i.org_id = {{org}} AND i.id = $1 AND i.token_hash = $2 AND i.{PENDING.replace(" AND ", " AND i.")}
"""


def schedule(outgoing: Outgoing) -> None:
    """Email ``outgoing`` once the current request's transaction has committed."""
    background.spawn(
        deliver(outgoing),
        what=f"invite delivery {outgoing.invite_id}",
    )


def compose(row, token: str) -> mail.Mail:
    role_label = row["role_name"] if row["role"] == Role.CUSTOM else ROLE_LABELS[Role(row["role"])]
    inviter = row["inviter_name"] or "A teammate"
    context = {
        "inviter_name": inviter,
        "inviter_email": row["inviter_email"],
        "email": row["email"],
        "org_name": row["org_name"],
        "role_label": role_label,
        "link": invite_link(token),
        "expires_at": row["expires_at"],
        "valid_for": humanize.remaining((row["expires_at"] - clock.now()).total_seconds()),
    }
    text, html = mail.render_mail("invite", **context)
    return mail.Mail(
        to=row["email"],
        subject=f"{inviter} invited you to join {row['org_name']} on Praesidia",
        text=text,
        html=html,
        kind="invite",
        link=context["link"],
    )


async def deliver(outgoing: Outgoing) -> None:
    token_hash = hash_token(outgoing.token)
    async with db.transaction() as conn:
        await conn.execute("SELECT set_config('lock_timeout', $1, true)", LOCK_WAIT)
        # The tenant first: row locks on organization obey its RLS UPDATE policy (the org itself),
        # and a lock request on a row it hides would return at once instead of waiting.
        scope = await tenancy.enter(outgoing.org_id)
        # Wait for the creating transaction (it holds this row FOR NO KEY UPDATE until it ends).
        org_alive = await conn.fetchval("SELECT 1 FROM organization WHERE id = $1 FOR SHARE", outgoing.org_id)
        row = await scope.fetchrow(_FOR_MAIL, outgoing.invite_id, token_hash) if org_alive else None
    if row is None:
        log.info("invite %s not emailed: rolled back, revoked or replaced before delivery", outgoing.invite_id)
        return
    error = None
    try:
        await mail.send(compose(row, outgoing.token))
    except mail.MailError as exc:
        error = exc.reason
        log.warning("invite %s to %s not delivered: %s", outgoing.invite_id, row["email"], error)
    async with db.transaction():
        scope = await tenancy.enter(outgoing.org_id)
        await scope.execute(
            """UPDATE invite SET send_error = $2::varchar,
                   last_sent_at = CASE WHEN $2::varchar IS NULL THEN $3 ELSE last_sent_at END
               WHERE org_id = {org} AND id = $1""",
            outgoing.invite_id,
            error,
            clock.now(),
        )
