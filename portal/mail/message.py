"""Composing messages: text and HTML parts from ``templates/mail/``, safe headers."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import clock
from portal.config import ROOT


class MailError(Exception):
    """Delivery failed; ``reason`` is short and fit to show to the person who asked for the mail.
    ``permanent``: trying again cannot help (the server refused the address for good, 5xx)."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason[:300]
        self.permanent = permanent


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    kind: str = "mail"  # names the .eml file in the outbox ("invite", "password-reset")
    # The one action link of the message. Only the outbox backend logs it (the development
    # stand-in for a mailbox); nothing else ever logs or stores it.
    link: str | None = None


# Plain-text parts must not be HTML-escaped; HTML parts must be.
_env = Environment(
    loader=FileSystemLoader(str(ROOT / "templates" / "mail")),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_env.filters["dt"] = lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else ""


def render_mail(template: str, /, **context: Any) -> tuple[str, str]:
    """The text and HTML bodies of ``templates/mail/<template>.txt`` and ``.html``."""
    return _env.get_template(f"{template}.txt").render(context), _env.get_template(f"{template}.html").render(context)


def one_line(value: str, limit: int = 200) -> str:
    """Header-safe: no line breaks or control characters (no header injection), bounded length."""
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value)
    return " ".join(cleaned.split())[:limit]


def build_message(mail: Mail, mail_from: str, *, message_id: str | None = None) -> EmailMessage:
    """The message; ``message_id`` (a local part) makes its Message-ID stable across retries, so
    a receiver that gets it twice (a sender that died after the server took it) sees one mail."""
    message = EmailMessage()
    message["From"] = one_line(mail_from, 320)
    message["To"] = one_line(mail.to, 320)
    message["Subject"] = one_line(mail.subject)
    message["Date"] = format_datetime(clock.now())
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{message_id}@{domain}>" if message_id else make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message
