"""Fixtures and helpers shared by the invite and password-reset suites (no tests here)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest

from portal.mail import background
from tests.mail_sink import SmtpSink, mail_settings


@pytest.fixture
async def smtp_sink(app):
    """A real SMTP server on a free port; the portal delivers to it for the test."""
    sink = SmtpSink().start()
    try:
        with mail_settings(smtp_url=sink.url()):
            yield sink
            await background.drain()
    finally:
        sink.stop()


@pytest.fixture
async def outbox(app, tmp_path):
    """No SMTP_URL: mail goes to ``<data dir>/outbox/*.eml``. Yields that folder."""
    with mail_settings(smtp_url=None, data_dir=tmp_path):
        yield tmp_path / "outbox"
        await background.drain()


@pytest.fixture
def make_invite(su):
    """A pending invite written straight to the database; returns (token, invite id)."""

    async def make(org, email: str, role: str = "member", *, created_at: datetime | None = None, ttl: timedelta = timedelta(days=7)):
        token = secrets.token_urlsafe(32)
        created = created_at or datetime.now(timezone.utc)
        invite_id = await su.fetchval(
            """INSERT INTO invite (org_id, email, role, token_hash, invited_by, created_at, expires_at, last_sent_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $6) RETURNING id""",
            org.id, email.lower(), role, hashlib.sha256(token.encode()).hexdigest(), org.owner.id, created, created + ttl,
        )
        return token, invite_id

    return make


async def send_invite(owner_client, org, email: str, role: str = "member"):
    r = await owner_client.post(f"/orgs/{org.slug}/invites", {"email": email, "role": role})
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    await background.drain()
    return r


_CSRF = [
    (re.compile(r'name="_csrf_token" value="[^"]*"'), 'name="_csrf_token" value=""'),
    (re.compile(r'"X-CSRFToken": "[^"]*"'), '"X-CSRFToken": ""'),
]


def without_nonces(html: str) -> str:
    """A page with its per-request values (the CSRF token) blanked, for comparing pages."""
    for pattern, blank in _CSRF:
        html = pattern.sub(blank, html)
    return html
