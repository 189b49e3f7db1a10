"""Outgoing mail: one ``send(Mail)`` over two real backends.

* SMTP (``SMTP_URL`` set): aiosmtplib, with implicit TLS, STARTTLS and authentication.
* Outbox (no ``SMTP_URL``): each message becomes an ``.eml`` file in ``PORTAL_DATA_DIR/outbox/``
  and its link is logged, so a development setup can follow every email without a mail server.

The backend is chosen from the settings at send time. Failures raise ``MailError`` with a short,
human-readable reason (never a credential), which callers may show to the people concerned.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from portal import ratelimit
from portal.errors import TooManyRequests
from portal.mail.message import Mail, MailError, build_message, render_mail

__all__ = ["Mail", "MailError", "build_message", "render_mail", "send", "backend_name", "address_allows"]


def backend_name() -> str:
    from portal.config import get_settings

    return "smtp" if get_settings().smtp_url else "outbox"


async def send(mail: Mail, *, message_id: str | None = None) -> None:
    """Deliver ``mail`` now, or raise ``MailError``. Only the outbox worker calls this
    (``portal.mail.queue``): everything else queues its mail in its own transaction."""
    from portal.config import get_settings
    from portal.db.engine import forbid_while_holding

    forbid_while_holding("talking to the mail server")  # SMTP can take seconds; a connection must not wait for it

    settings = get_settings()
    message = build_message(mail, settings.mail_from, message_id=message_id)
    if settings.smtp_url:
        from portal.mail import smtp

        await smtp.send(message, smtp.SmtpTarget.parse(settings.smtp_url))
    else:
        from portal.mail import outbox

        await outbox.write(message, mail, settings.outbox_dir)


async def address_allows(kind: str, address: str, per_hour: int) -> bool:
    """Whether one more ``kind`` mail may go to ``address`` this hour: against mail bombing an
    address through a public form. Counted for addresses without an account too, and a refusal
    is silent (the form answers the same either way, so dropping the mail reveals nothing)."""
    try:
        await ratelimit.hit(
            f"{kind}-mail:" + hashlib.sha256(address.encode()).hexdigest()[:32],
            limit=per_hour,
            window=timedelta(hours=1),
            message="",
        )
    except TooManyRequests:
        return False
    return True
