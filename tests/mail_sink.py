"""Mail in the suite: a real SMTP server (aiosmtpd on a free port), the outbox folder, and helpers
to read what arrived and to point the portal's mail settings at either."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email
import email.policy
import ipaddress
import logging
import re
import ssl
import time
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Iterator

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from portal.config import get_settings, set_settings
from portal.devdb import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command

INVITE_LINK = re.compile(r"http://testserver(/invites/[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
RESET_LINK = re.compile(r"http://testserver(/reset-password/[A-Za-z0-9_.-]+)")


class SmtpSink:
    """An SMTP server that keeps every message it receives.

    ``port`` is chosen up front (aiosmtpd cannot listen on port 0). Options: ``tls`` (a server
    SSLContext) with ``implicit_tls`` for SMTPS, else STARTTLS is offered (and required with
    ``require_starttls``); ``credentials`` (user, password) makes AUTH mandatory. Addresses in
    ``refuse`` are turned away for good (550), as a server does for a mailbox that does not exist.
    """

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        credentials: tuple[str, str] | None = None,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.tls_seen: list[bool] = []
        self.refuse: set[str] = set()
        kwargs: dict = {}
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs["tls_context"] = tls
            kwargs["require_starttls"] = require_starttls
        if credentials:
            self._credentials = credentials
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=tls is not None)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == self._credentials:
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.tls_seen.append(session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None)
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def url(self, scheme: str = "smtp", query: str = "", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}{('?' + query) if query else ''}"

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(self.messages) >= count, f"expected {count} messages, got {len(self.messages)}"
        return self.messages


async def cancel_leftover_mail(database) -> None:
    """Mail that earlier tests queued and never delivered must not land in this test's mailbox."""
    conn = await database.cluster.superuser_connect()
    try:
        for table in ("mail_outbox", "account_mail"):
            await conn.execute(f"UPDATE {table} SET status = 'cancelled', payload = NULL WHERE status IN ('queued', 'sending')")
    finally:
        await conn.close()


@contextmanager
def mail_settings(**changes) -> Iterator[None]:
    """Swap the process settings (e.g. ``smtp_url=...``, ``data_dir=...``) for the block."""
    before = get_settings()
    set_settings(dataclasses.replace(before, **changes))
    try:
        yield
    finally:
        set_settings(before)


def outbox_messages(folder: Path) -> list[EmailMessage]:
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(folder.glob("*.eml"))
    ]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message: EmailMessage, pattern: re.Pattern = INVITE_LINK) -> str:
    """The path of the one link in the message (checked to be the same in both parts)."""
    found = pattern.findall(text_of(message))
    assert len(set(found)) == 1, found
    assert found[0] in html_of(message)
    return found[0]


def self_signed_tls(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the CA file a client needs to trust it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
