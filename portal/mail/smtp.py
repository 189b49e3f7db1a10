"""Delivery over SMTP with aiosmtplib.

``SMTP_URL`` forms:

* ``smtp://host:25`` — plain SMTP (a local relay); add ``?starttls=1`` to require STARTTLS;
* ``smtp+starttls://user:password@host:587`` — STARTTLS required;
* ``smtps://user:password@host:465`` — implicit TLS.

User and password are URL-encoded. Query options: ``timeout`` (seconds, default 30) and
``cafile`` (a CA bundle for a private mail server). Certificates are always verified.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from portal.mail.message import MailError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool = False
    start_tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    cafile: str | None = None

    @classmethod
    def parse(cls, url: str) -> "SmtpTarget":
        """Parse ``SMTP_URL``; a malformed URL is a ``MailError`` naming what is wrong (not the password)."""
        try:
            parts = urlsplit(url.strip())
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            scheme = parts.scheme.lower()
            if scheme == "smtps":
                use_tls, start_tls, default_port = True, False, 465
            elif scheme == "smtp+starttls":
                use_tls, start_tls, default_port = False, True, 587
            elif scheme == "smtp":
                start_tls = query.get("starttls", "").lower() in _TRUE
                use_tls, default_port = False, 587 if start_tls else 25
            else:
                raise MailError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
            if not parts.hostname:
                raise MailError("SMTP_URL names no mail server host")
            port = parts.port or default_port
            timeout = float(query.get("timeout", "30"))
        except ValueError:
            raise MailError("SMTP_URL is not a valid URL (check the port and the timeout)") from None
        return cls(
            host=parts.hostname,
            port=port,
            use_tls=use_tls,
            start_tls=start_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=max(1.0, min(timeout, 300.0)),
            cafile=query.get("cafile") or None,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


async def send(message: EmailMessage, target: SmtpTarget) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            validate_certs=True,
            cert_bundle=target.cafile,
            timeout=target.timeout,
        )
    except aiosmtplib.SMTPAuthenticationError:
        raise MailError(f"the mail server at {target.where} rejected our sign-in (check the user and password in SMTP_URL)") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = ", ".join(str(e.code) for e in exc.recipients) or "refused"
        permanent = bool(exc.recipients) and all(e.code >= 500 for e in exc.recipients)
        raise MailError(f"the mail server refused the recipient address ({codes})", permanent=permanent) from None
    except aiosmtplib.SMTPSenderRefused as exc:
        raise MailError(f"the mail server refused the sender address MAIL_FROM ({exc.code})") from None
    except aiosmtplib.SMTPTimeoutError:
        raise MailError(f"the mail server at {target.where} did not answer in time") from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected):
        raise MailError(f"could not reach the mail server at {target.where}") from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"the mail server answered {exc.code}: {exc.message[:120]}", permanent=exc.code >= 500) from None
    except aiosmtplib.SMTPNotSupported:
        raise MailError(f"the mail server at {target.where} does not offer STARTTLS") from None
    except ssl.SSLError:
        raise MailError(f"a secure connection to the mail server at {target.where} failed (certificate or TLS settings)") from None
    except aiosmtplib.SMTPException as exc:
        raise MailError(f"mail delivery failed ({type(exc).__name__})") from None
    except (OSError, TimeoutError):
        raise MailError(f"could not reach the mail server at {target.where}") from None
