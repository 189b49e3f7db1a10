"""Password reset by emailed link: expires after an hour, works once, same answer for every address.

The link carries an itsdangerous signature over the user id and a fingerprint of the user's
current password hash. Nothing is stored: the link dies when it is an hour old (``max_age`` is
always passed, against the portal's clock) and as soon as the password changes — the reset itself
changes it, so every link works at most once, and an older link dies with it. After a reset every
session of the user is revoked.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from portal import clock, mail, ratelimit
from portal.accounts import sessions, signed
from portal.accounts.passwords import hash_password
from portal.accounts.service import normalize_email, validate_email, validate_password
from portal.accounts.signed import SignedLinks
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Invalid
from portal.mail import queue

log = logging.getLogger("portal.accounts")

MAX_AGE = timedelta(hours=1)
SALT = "portal.password-reset"
REQUESTS_PER_CLIENT = 10  # "forgot password" submissions per client and hour
MAILS_PER_ADDRESS = 3  # reset emails per address and hour; more are dropped silently (no oracle)
LINK_HITS_PER_CLIENT = 30  # reset page views and submissions per client and 10 minutes


class DeadLink(signed.DeadLink):
    def __init__(self) -> None:
        super().__init__(
            "This password reset link is no longer valid. Links expire after an hour and work only once. "
            "Ask for a new one below."
        )


LINKS = SignedLinks(SALT, MAX_AGE, max_length=400)


def make_token(user_id: UUID, password_hash: str) -> str:
    return LINKS.dumps({"u": str(user_id), "p": LINKS.fingerprint(password_hash)})


def _read(token: str) -> tuple[UUID, str]:
    data = LINKS.loads(token)
    try:
        return UUID(data["u"]), str(data["p"])
    except (KeyError, TypeError, ValueError):
        raise DeadLink() from None


def reset_link(token: str) -> str:
    return f"{get_settings().base_url}/reset-password/{token}"


async def _user(user_id: UUID) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow("SELECT id, email, name, password_hash FROM app_user WHERE id = $1", user_id)


def _matches(row: Any, fingerprint: str) -> bool:
    return row is not None and LINKS.matches(row["password_hash"], fingerprint)


_TOO_MANY = "Too many password reset attempts from your network. Wait a while and try again."


async def check_link_client(ip: str) -> None:
    """A client's views and submissions of reset links (``LINK_HITS_PER_CLIENT`` per 10 minutes)."""
    await ratelimit.hit_client("reset-link", ip, limit=LINK_HITS_PER_CLIENT, window=timedelta(minutes=10), message=_TOO_MANY)


async def request_reset(raw_email: str, ip: str) -> None:
    """Email a reset link if the address has an account. Says nothing either way."""
    email = normalize_email(raw_email)[:320]
    if message := validate_email(email):
        raise Invalid("Please correct the highlighted fields.", field_errors={"email": message})
    await ratelimit.hit_client("reset-request", ip, limit=REQUESTS_PER_CLIENT, window=timedelta(hours=1), message=_TOO_MANY)
    if not await mail.address_allows("reset", email, MAILS_PER_ADDRESS):
        log.info("password reset mail not sent: address limit reached")
        return
    async with db.transaction():
        # The same work for every address: the worker looks the account up when it sends.
        await queue.enqueue_composed("password-reset", email, {})


@queue.composer("password-reset")
async def compose_reset(email: str, data: dict[str, Any]) -> mail.Mail | None:
    """The reset mail for the account of ``email``, with a link made now; None without one."""
    async with db.connection() as conn:
        row = await conn.fetchrow("SELECT id, email, name, password_hash FROM app_user WHERE email = $1", email)
    return reset_mail(dict(row)) if row is not None else None


def reset_mail(row: dict[str, Any]) -> mail.Mail:
    link = reset_link(make_token(row["id"], row["password_hash"]))
    text, html = mail.render_mail("password_reset", name=row["name"], email=row["email"], link=link, valid_for="1 hour")
    return mail.Mail(to=row["email"], subject="Reset your Praesidia password", text=text, html=html, kind="password-reset", link=link)


async def check(token: str) -> dict[str, Any]:
    """The account a live reset link belongs to, or ``DeadLink``."""
    user_id, fingerprint = _read(token)
    row = await _user(user_id)
    if not _matches(row, fingerprint):
        raise DeadLink()
    return {"id": row["id"], "email": row["email"], "name": row["name"]}


async def reset_password(token: str, password: str, confirm: str) -> UUID:
    user_id, fingerprint = _read(token)
    user = await check(token)
    errors = {}
    if message := validate_password(password, user["email"]):
        errors["password"] = message
    elif password != confirm:
        errors["confirm"] = "The two passwords don't match."
    if errors:
        raise Invalid("Please correct the highlighted fields.", field_errors=errors)
    new_hash = await hash_password(password)
    async with db.transaction(user_id=user_id) as conn:
        # Locked and checked again: of two concurrent uses of one link, the second finds the
        # fingerprint changed and fails.
        row = await conn.fetchrow("SELECT id, email, password_hash FROM app_user WHERE id = $1 FOR UPDATE", user_id)
        if not _matches(row, fingerprint):
            raise DeadLink()
        # The link came by mail: using it proves the mailbox, so the address counts as confirmed.
        await conn.execute(
            "UPDATE app_user SET password_hash = $2, email_verified_at = coalesce(email_verified_at, $3) WHERE id = $1",
            user_id, new_hash, clock.now(),
        )
        await sessions.revoke_all(user_id)  # joins this transaction
        # The sign-in throttle suggests a reset; let it unblock the account.
        await conn.execute("DELETE FROM login_attempt WHERE email = $1 AND NOT succeeded", row["email"])
    log.info("password reset for user %s; all sessions revoked", user_id)
    return user_id
