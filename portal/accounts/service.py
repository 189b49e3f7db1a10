"""Accounts: sign-up, sign-in with throttling. No Litestar, no HTML here."""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from portal import clock, emails, humanize, mail, ratelimit
from portal.accounts import verify
from portal.accounts.passwords import hash_password, verify_password
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Invalid, TooManyRequests
from portal.resources.common import has_control

log = logging.getLogger("portal.accounts")

# Sign-in throttle (SPEC §9: slow guessers down, never lock the owner out). Failed attempts in
# the window are counted per account and client, and per client; an account never refuses a
# client that has not itself failed on it.
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_PAIR = 5  # one client guessing one account
MAX_FAILURES_PER_IP = 50  # one client guessing many accounts
ACCOUNT_UNDER_ATTACK = 10  # failures on one account from all clients: then, for clients that failed on it,
MAX_FAILURES_PER_PAIR_UNDER_ATTACK = 2  # ...fewer tries before they must wait
# A ceiling on guesses at one account from everywhere (a botnet, or one IPv6 network's many
# /64s): beyond it only clients that have signed in to the account before may try. Far above
# what locks anybody out by accident; a password reset lifts it.
ACCOUNT_CEILING = 100
KNOWN_CLIENT = timedelta(days=30)
GENERIC_LOGIN_ERROR = "Incorrect email or password."


normalize_email = emails.canonical


def validate_email(email: str) -> str | None:
    """What is wrong with ``email`` (as a field error), or None."""
    try:
        emails.normalize(email)
    except ValueError as exc:
        return str(exc)
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
    if has_control(name):  # C0, DEL and C1: the same rule as every other single-line field
        return "Names can't contain control characters."
    return None


async def signup(email: str, name: str, password: str, *, ip: str | None = None, next_url: str = "") -> str:
    """Start an account and mail a link to confirm its address; returns the normalized address.

    The same answer and the same work whether or not the address already has an account (no
    account oracle, SPEC §10): the password is hashed either way, one INSERT decides, and one mail
    goes out afterwards — a confirmation link, or to the existing account a note that someone
    tried. Nobody is signed in by signing up. ``ip`` (the client, for web sign-ups) is rate-limited.
    """
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
    password_hash = await hash_password(password)  # holding no connection (argon2 queues for a slot)
    mail_allowed = await mail.address_allows("signup", email, verify.MAILS_PER_ADDRESS)
    async with db.transaction() as conn:
        created = await conn.fetchval(
            "INSERT INTO app_user (email, name, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING RETURNING id",
            email,
            name,
            password_hash,
        )
        if mail_allowed:
            await verify.queue_signup_mail(email, created, next_url)
        else:
            log.info("sign-up mail not queued: address limit reached")
    return email


async def _open_attempt(email: str, ip: str, now) -> tuple[UUID, UUID | None, str | None]:
    """Check the throttle and record this attempt as failed; the attempt id and the account's id
    and password hash (None, None for no account).

    The attempt is written *before* the password is checked (and marked successful after), so
    parallel guesses all count: an advisory lock per email, then per client, serializes the
    check-and-insert (always in that order, so two attempts never wait on each other in a cycle).
    One short use of a pooled connection: it is released before the (slow) hash check.
    """
    since = now - THROTTLE_WINDOW
    ip = ratelimit.client_key(ip)  # an IPv6 /64 is one client
    async with db.connection() as conn:
        async with conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_xact_lock(hashtextextended($2, 0))",
                "login-email:" + email,
                "login-ip:" + ip,
            )
            # For each limit, the failure whose expiry lifts it: the limit-th most recent.
            seen = await conn.fetchrow(
                """
                SELECT count(*) FILTER (WHERE email = $1 AND ip = $2) AS pair,
                       count(*) FILTER (WHERE email = $1) AS by_email,
                       count(*) FILTER (WHERE ip = $2) AS by_ip,
                       (array_agg(at ORDER BY at DESC) FILTER (WHERE email = $1 AND ip = $2))[$4] AS pair_lifts,
                       (array_agg(at ORDER BY at DESC) FILTER (WHERE email = $1 AND ip = $2))[$5] AS pair_lifts_under_attack,
                       (array_agg(at ORDER BY at DESC) FILTER (WHERE ip = $2))[$6] AS ip_lifts,
                       (array_agg(at ORDER BY at DESC) FILTER (WHERE email = $1))[$7] AS email_lifts,
                       EXISTS (SELECT 1 FROM login_attempt k
                               WHERE k.email = $1 AND k.ip = $2 AND k.succeeded AND k.at > $8) AS known_client
                FROM login_attempt
                WHERE NOT succeeded AND at > $3 AND (email = $1 OR ip = $2)
                """,
                email,
                ip[:64],
                since,
                MAX_FAILURES_PER_PAIR,
                MAX_FAILURES_PER_PAIR_UNDER_ATTACK,
                MAX_FAILURES_PER_IP,
                ACCOUNT_CEILING,
                now - KNOWN_CLIENT,
            )
            lifts = None
            if seen["pair"] >= MAX_FAILURES_PER_PAIR:
                lifts = seen["pair_lifts"]
            elif seen["by_ip"] >= MAX_FAILURES_PER_IP:
                lifts = seen["ip_lifts"]
            elif seen["by_email"] >= ACCOUNT_UNDER_ATTACK and seen["pair"] >= MAX_FAILURES_PER_PAIR_UNDER_ATTACK:
                lifts = seen["pair_lifts_under_attack"]
            elif seen["by_email"] >= ACCOUNT_CEILING and not seen["known_client"]:
                lifts = seen["email_lifts"]
            if lifts is not None:
                wait = max(1, int((lifts - since).total_seconds()) + 1)
                raise TooManyRequests(
                    f"Too many sign-in attempts. Try again in {humanize.wait(wait)}, or reset your password.",
                    retry_after=wait,
                )
            attempt = await conn.fetchval(
                "INSERT INTO login_attempt (email, ip, succeeded, at) VALUES ($1, $2, false, $3) RETURNING id",
                email,
                ip[:64],
                now,
            )
        account = await conn.fetchrow("SELECT id, password_hash FROM app_user WHERE email = $1", email)
    if account is None:
        return attempt, None, None
    return attempt, account["id"], account["password_hash"]


async def _verify(email: str, password: str, ip: str) -> UUID | None:
    """Throttled password check for ``email``; the user id if it matches.

    No pooled connection is held while waiting for a hashing slot or hashing (SPEC §9): one
    short block records the attempt, the next marks it successful.
    """
    attempt, user_id, password_hash = await _open_attempt(email, ip, clock.now())
    if not await verify_password(password_hash, password) or user_id is None:
        return None
    async with db.connection() as conn:
        await conn.execute("UPDATE login_attempt SET succeeded = true WHERE id = $1", attempt)
    return user_id


async def authenticate(email: str, password: str, ip: str) -> UUID:
    """The user id for these credentials, or one generic error whatever was wrong."""
    user_id = await _verify(normalize_email(email)[:320], password, ip)
    if user_id is None:
        raise Invalid(GENERIC_LOGIN_ERROR)
    return user_id


async def reauthenticate(email: str, password: str, ip: str) -> None:
    """Re-check the signed-in user's password before a sensitive action (transfer, delete).

    Counts against the same throttle as sign-in. Called before the action's transaction opens:
    the failed attempt is committed on its own, and no connection waits for the hash.
    """
    if await _verify(normalize_email(email)[:320], password, ip) is None:
        raise Invalid("That password isn't right.", field_errors={"password": "That password isn't right."})


async def check_signup_rate(ip: str) -> None:
    """At most SIGNUP_RATE sign-ups per client per hour (argon2 hashing is costly)."""
    await ratelimit.hit_client(
        "signup", ip,
        limit=get_settings().signup_rate,
        window=timedelta(hours=1),
        message="Too many accounts created from your network. Try again later.",
    )
