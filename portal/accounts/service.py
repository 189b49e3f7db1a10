"""Accounts: sign-up, sign-in with throttling. No Litestar, no HTML here."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

import asyncpg

from portal import clock, ratelimit
from portal.accounts.passwords import hash_password, verify_password
from portal.db import engine as db
from portal.errors import Invalid, TooManyRequests

EMAIL_RE = re.compile(r"^[^@\s<>\"',;:()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_PAIR = 5  # one client guessing one account
MAX_FAILURES_PER_EMAIL = 20  # one account guessed from many clients
MAX_FAILURES_PER_IP = 50  # one client guessing many accounts
SIGNUPS_PER_HOUR = 20
GENERIC_LOGIN_ERROR = "Incorrect email or password."


def normalize_email(raw: str) -> str:
    return raw.strip().lower()


def validate_email(email: str) -> str | None:
    if not email:
        return "Enter your email address."
    if len(email) > 254 or not EMAIL_RE.match(email):
        return "Enter a valid email address, like name@example.com."
    return None


def validate_password(password: str, email: str = "") -> str | None:
    if len(password) < 10:
        return "Use at least 10 characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    if email and password.lower() == email.lower():
        return "Your password can't be your email address."
    return None


def validate_name(name: str) -> str | None:
    if not name:
        return "Enter your name."
    if len(name) > 100:
        return "Use at most 100 characters."
    if any(ord(c) < 32 for c in name):
        return "Names can't contain control characters."
    return None


async def signup(email: str, name: str, password: str, *, ip: str | None = None) -> UUID:
    """Create an account. ``ip`` (the client, for web sign-ups) is rate-limited."""
    email = normalize_email(email)
    name = name.strip()
    errors = {
        k: v
        for k, v in {
            "email": validate_email(email),
            "name": validate_name(name),
            "password": validate_password(password, email),
        }.items()
        if v
    }
    if errors:
        raise Invalid("Please correct the highlighted fields.", field_errors=errors)
    if ip is not None:
        await check_signup_rate(ip)
    password_hash = await hash_password(password)
    try:
        async with db.connection() as conn:
            return await conn.fetchval(
                "INSERT INTO app_user (email, name, password_hash) VALUES ($1, $2, $3) RETURNING id",
                email,
                name,
                password_hash,
            )
    except asyncpg.UniqueViolationError:
        raise Invalid(
            "Please correct the highlighted fields.",
            field_errors={"email": "An account with this email already exists. Sign in instead."},
        ) from None


async def _open_attempt(conn, email: str, ip: str, now) -> UUID:
    """Check the throttle and record this attempt as failed, atomically per email and client.

    The attempt is written *before* the password is checked (and marked successful after), so
    parallel guesses all count: an advisory lock per email, then per client, serializes the
    check-and-insert (always in that order, so two attempts never wait on each other in a cycle).
    """
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))",
            "login-email:" + email,
            "login-ip:" + ip,
        )
        seen = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE email = $1 AND ip = $2) AS pair,
                   count(*) FILTER (WHERE email = $1) AS by_email,
                   count(*) FILTER (WHERE ip = $2) AS by_ip
            FROM login_attempt
            WHERE NOT succeeded AND at > $3 AND (email = $1 OR ip = $2)
            """,
            email,
            ip,
            now - THROTTLE_WINDOW,
        )
        if (
            seen["pair"] >= MAX_FAILURES_PER_PAIR
            or seen["by_email"] >= MAX_FAILURES_PER_EMAIL
            or seen["by_ip"] >= MAX_FAILURES_PER_IP
        ):
            raise TooManyRequests(
                "Too many sign-in attempts. Wait a few minutes, or reset your password.",
                retry_after=int(THROTTLE_WINDOW.total_seconds()),
            )
        return await conn.fetchval(
            "INSERT INTO login_attempt (email, ip, succeeded, at) VALUES ($1, $2, false, $3) RETURNING id",
            email,
            ip[:64],
            now,
        )


async def _verify(conn, email: str, password: str, ip: str) -> UUID | None:
    """Throttled password check for ``email``; the user id if it matches."""
    attempt = await _open_attempt(conn, email, ip, clock.now())
    row = await conn.fetchrow("SELECT id, password_hash FROM app_user WHERE email = $1", email)
    ok = await verify_password(row["password_hash"] if row else None, password)
    if not ok or row is None:
        return None
    await conn.execute("UPDATE login_attempt SET succeeded = true WHERE id = $1", attempt)
    return row["id"]


async def authenticate(email: str, password: str, ip: str) -> UUID:
    """The user id for these credentials, or one generic error whatever was wrong."""
    email = normalize_email(email)[:320]
    async with db.connection() as conn:
        user_id = await _verify(conn, email, password, ip)
    if user_id is None:
        raise Invalid(GENERIC_LOGIN_ERROR)
    return user_id


async def reauthenticate(email: str, password: str, ip: str) -> None:
    """Re-check the signed-in user's password before a sensitive action (transfer, delete).

    Counts against the same throttle as sign-in, on a connection of its own: the attempt must be
    recorded even though the action's transaction rolls back when the password is wrong.
    """
    async with db.autonomous() as conn:
        if await _verify(conn, normalize_email(email), password, ip) is None:
            raise Invalid("That password isn't right.", field_errors={"password": "That password isn't right."})


async def check_signup_rate(ip: str) -> None:
    """At most SIGNUPS_PER_HOUR new accounts per client per hour (argon2 hashing is costly)."""
    await ratelimit.hit(
        "signup:" + ip,
        limit=SIGNUPS_PER_HOUR,
        window=timedelta(hours=1),
        message="Too many accounts created from your network. Try again later.",
    )
