"""The invite mail: composed and queued in the transaction that creates the invite.

The mail is a row of the outbox (``portal.mail.queue``), so the invite and its mail commit or
roll back together, and a committed invite is mailed even if the process dies right after. The
token lives in the sealed message only; revoking or replacing the invite before the mail went
out cancels it. The outcome lands on the outbox row (the invites page shows it) and on the
invite: ``last_sent_at`` when sent, ``send_error`` when given up (what the JSON API shows, and
the invites page once the outbox row is purged).
"""

from __future__ import annotations

from uuid import UUID

from portal import clock, humanize, mail
from portal.config import get_settings
from portal.mail import queue
from portal.tenancy.permissions import ROLE_LABELS, Role
from portal.tenancy.scope import TenantScope

queue.on_outcome(
    "invite",
    sent="UPDATE invite SET last_sent_at = $2, send_error = NULL WHERE org_id = {org} AND id = $1",
    dead="UPDATE invite SET send_error = $2 WHERE org_id = {org} AND id = $1",
)

_FOR_MAIL = """
SELECT i.email, i.role, r.name AS role_name, i.expires_at, o.name AS org_name, u.name AS inviter_name,
       u.email AS inviter_email
FROM invite i
JOIN organization o ON o.id = i.org_id
LEFT JOIN app_user u ON u.id = i.invited_by
LEFT JOIN org_role r ON r.org_id = i.org_id AND r.id = i.custom_role_id
WHERE i.org_id = {org} AND i.id = $1
"""


def invite_link(token: str) -> str:
    return f"{get_settings().base_url}/invites/{token}"


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


async def queue_mail(scope: TenantScope, invite_id: UUID, token: str) -> None:
    """Queue the mail of invite ``invite_id`` (just written, in this transaction)."""
    row = await scope.fetchrow(_FOR_MAIL, invite_id)
    await queue.enqueue(compose(row, token), scope=scope, ref_id=invite_id)
