"""Verified email: an emailed link proves that the person reads the mailbox of their account.

Accepting an invite needs it (SPEC §10): without it, whoever saw an invite link could sign up with
the invited address and join with the invited role. Everything else works unverified.

The link is an itsdangerous signature (``max_age`` always passed, against the portal's clock) over
the user id, a keyed fingerprint of the address and where the person was going. Nothing is stored:
the link dies after 48 hours, and once the address is verified — so it works once, and every
other link of the account dies with it. Opening it only shows a page (mail scanners open links);
confirming is a POST by the account itself, signed in: a mailbox alone cannot confirm an account
that somebody else created with its address, and knows the password of.

The mail is queued in the outbox (``portal.mail.queue``) in the transaction that creates the
account, and sent after the commit; no request waits for the mail server. Sign-up mails to one
address are capped per hour and dropped silently beyond (they answer the same either way, so
dropping reveals nothing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from portal import clock, mail, ratelimit
from portal.accounts import signed
from portal.accounts.signed import SignedLinks
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Forbidden
from portal.mail import queue

log = logging.getLogger("portal.accounts")

MAX_AGE = timedelta(hours=48)
VALID_FOR = "48 hours"
SALT = "portal.verify-email"
RESENDS_PER_HOUR = 3  # per account: each one is a mail to its address
MAILS_PER_ADDRESS = 3  # sign-up mails per address and hour; more are dropped silently (no oracle)
LINK_HITS_PER_CLIENT = 30  # link page views and confirmations per client and 10 minutes
LINK_WINDOW = timedelta(minutes=10)


class DeadLink(signed.DeadLink):
    def __init__(self) -> None:
        super().__init__(
            "This confirmation link is no longer valid. Links expire after 48 hours and work only once. "
            "If you already confirmed your address, there is nothing more to do; otherwise sign in and "
            "ask for a new link from your account page."
        )


@dataclass(frozen=True)
class Link:
    """What a live link confirms, and where its person goes afterwards."""

    user_id: UUID
    email: str
    name: str
    next_url: str


class NotYours(Forbidden):
    """Signed in as another account than the one the link confirms; the link stays usable."""

    def __init__(self, link: Link):
        super().__init__(f"This link confirms the address of the account {link.email}.")
        self.link = link


LINKS = SignedLinks(SALT, MAX_AGE, max_length=1000)


def make_token(user_id: UUID, email: str, next_url: str = "") -> str:
    # Where to go afterwards rides along only while it is short (an invite landing is ~50 characters).
    return LINKS.dumps({"u": str(user_id), "e": LINKS.fingerprint(email), "n": next_url if len(next_url) <= 300 else ""})


def _read(token: str) -> tuple[UUID, str, str]:
    data = LINKS.loads(token)
    try:
        return UUID(data["u"]), str(data["e"]), str(data.get("n") or "")
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DeadLink() from None


def verify_link(token: str) -> str:
    return f"{get_settings().base_url}/verify-email/{token}"


_ACCOUNT = "SELECT id, email, name, email_verified_at FROM app_user WHERE id = $1"


def _live(row: Any, fingerprint: str) -> bool:
    return (
        row is not None
        and row["email_verified_at"] is None
        and LINKS.matches(row["email"], fingerprint)
    )


_TOO_MANY = "Too many confirmation attempts from your network. Wait a few minutes and open the link again."


async def check_link_client(ip: str) -> None:
    """A client's views and confirmations of links (``LINK_HITS_PER_CLIENT`` per ``LINK_WINDOW``)."""
    await ratelimit.hit_client("verify-link", ip, limit=LINK_HITS_PER_CLIENT, window=LINK_WINDOW, message=_TOO_MANY)


async def check(token: str) -> Link:
    """The account a live link would confirm, or ``DeadLink``. Reads only."""
    user_id, fingerprint, next_url = _read(token)
    async with db.connection() as conn:
        row = await conn.fetchrow(_ACCOUNT, user_id)
    if not _live(row, fingerprint):
        raise DeadLink()
    return Link(row["id"], row["email"], row["name"], next_url)


async def confirm(token: str, *, user_id: UUID) -> Link:
    """Mark the address verified, as the signed-in account ``user_id``. One conditional UPDATE
    decides, so of two uses of one link the second finds it dead."""
    link_user, fingerprint, next_url = _read(token)
    async with db.connection() as conn:
        row = await conn.fetchrow(_ACCOUNT, link_user)
        if not _live(row, fingerprint):
            raise DeadLink()
        if row["id"] != user_id:
            raise NotYours(Link(row["id"], row["email"], row["name"], next_url))
        done = await conn.fetchval(
            "UPDATE app_user SET email_verified_at = $3 WHERE id = $1 AND email = $2 AND email_verified_at IS NULL RETURNING id",
            row["id"],
            row["email"],
            clock.now(),
        )
    if done is None:
        raise DeadLink()
    log.info("email address verified for user %s", user_id)
    return Link(row["id"], row["email"], row["name"], next_url)


async def verified_at(user_id: UUID) -> datetime | None:
    async with db.connection() as conn:
        return await conn.fetchval("SELECT email_verified_at FROM app_user WHERE id = $1", user_id)


async def resend(user_id: UUID, next_url: str = "") -> str | None:
    """Mail a new link to the signed-in account's address; None if it is already verified."""
    async with db.connection() as conn:
        row = await conn.fetchrow(_ACCOUNT, user_id)
    if row is None or row["email_verified_at"] is not None:
        return None
    await ratelimit.hit(
        f"verify-resend:{user_id}",
        limit=RESENDS_PER_HOUR,
        window=timedelta(hours=1),
        message=f"We've sent you {RESENDS_PER_HOUR} confirmation links in the last hour. Check your spam folder, "
        "or ask again a little later.",
    )
    async with db.transaction():
        await queue.enqueue(link_mail(dict(row), next_url))
    return row["email"]


# -- sign-up mail -------------------------------------------------------------------------------

async def queue_signup_mail(email: str, created_id: UUID | None, next_url: str) -> None:
    """The one mail of a sign-up, in its transaction. The same work either way: the address is
    queued, and the worker writes a link for a new account or a warning for an existing one."""
    await queue.enqueue_composed("signup", email, {"created": str(created_id) if created_id else None, "next": next_url})


@queue.composer("signup")
async def compose_signup(email: str, data: dict[str, Any]) -> mail.Mail | None:
    async with db.connection() as conn:
        row = await conn.fetchrow("SELECT id, email, name, email_verified_at FROM app_user WHERE email = $1", email)
    if row is None:  # deleted meanwhile
        return None
    if data.get("created") == str(row["id"]):
        return link_mail(dict(row), data.get("next") or "")
    return existing_mail(dict(row))


def link_mail(row: dict[str, Any], next_url: str) -> mail.Mail:
    link = verify_link(make_token(row["id"], row["email"], next_url))
    text, html = mail.render_mail("verify_email", name=row["name"], email=row["email"], link=link, valid_for=VALID_FOR)
    return mail.Mail(to=row["email"], subject="Confirm your email address for Praesidia", text=text, html=html, kind="verify-email", link=link)


def existing_mail(row: dict[str, Any]) -> mail.Mail:
    """Someone signed up with an address that has an account: tell its owner, offer the way in."""
    base = get_settings().base_url
    query = urlencode({"email": row["email"]})
    confirm_link = None
    if row["email_verified_at"] is None:  # probably its owner again, who never got the first mail
        confirm_link = verify_link(make_token(row["id"], row["email"]))
    text, html = mail.render_mail(
        "signup_existing",
        name=row["name"],
        email=row["email"],
        sign_in_link=f"{base}/login?{query}",
        reset_link=f"{base}/forgot-password?{query}",
        confirm_link=confirm_link,
        valid_for=VALID_FOR,
    )
    return mail.Mail(
        to=row["email"],
        subject="Someone tried to create a Praesidia account with your email address",
        text=text,
        html=html,
        kind="signup-existing",
        link=confirm_link,
    )
