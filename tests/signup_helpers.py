"""Signing up the way a person does: the form, then the confirmation link read out of the mail
that really arrived (SMTP sink or outbox), never a write to the database. No tests here."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from portal.mail import background
from tests.mail_sink import link_in, text_of as mail_text

VERIFY_LINK = re.compile(r"http://testserver(/verify-email/[A-Za-z0-9_.-]+)")
SIGNUP_PASSWORD = "a-long-password-1"


async def sign_up(client, email: str, *, name: str = "Ada Lovelace", password: str = SIGNUP_PASSWORD, next: str | None = None, **extra):
    """Submit the sign-up form; asserts the one answer every sign-up gets (no session)."""
    form = {"email": email, "name": name, "password": password, **extra}
    if next is not None:
        form["next"] = next
    r = await client.post("/signup", form)
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    assert urlsplit(r.headers["location"]).path == "/signup"
    assert parse_qs(urlsplit(r.headers["location"]).query)["sent"] == ["1"]
    assert "portal_session" not in r.cookies
    await background.drain()
    return r


def mail_to(messages: list[EmailMessage], email: str, subject_part: str = "") -> EmailMessage:
    """The newest message to ``email`` (whose subject contains ``subject_part``)."""
    for message in reversed(messages):
        if message["To"] == email and subject_part in message["Subject"]:
            return message
    raise AssertionError(f"no mail to {email} ({subject_part!r}); got {[(m['To'], m['Subject']) for m in messages]}")


def verify_path(message: EmailMessage) -> str:
    """The confirmation link's path (the same in the text and the HTML part)."""
    path = link_in(message, VERIFY_LINK)
    assert "48 hours" in mail_text(message)
    return path


async def confirm(client, path: str, email: str, password: str = SIGNUP_PASSWORD):
    """Open the link, sign in when the page asks, press Confirm: the POST's response."""
    page = await client.get(path)
    assert page.status_code == 200, page.status_code
    if "Sign in to confirm" in page.text:
        r = await client.post("/login", {"email": email, "password": password, "next": path})
        assert r.status_code == 303 and r.headers["location"] == path, (r.status_code, r.headers.get("location"))
        page = await client.get(path)
    assert "Confirm my email address" in page.text
    return await client.post(path)
