"""Accounts: sign-up, sign-in with throttling. No Litestar, no HTML here."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

import asyncpg

from portal import clock
from portal.accounts.passwords import hash_password, verify_password
from portal.db import engine as db
from portal.errors import Invalid, TooManyRequests

EMAIL_RE = re.compile(r"^[^@\s<>\"',;:()\[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 30
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


async def signup(email: str, name: str, password: str) -> UUID:
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


async def authenticate(email: str, password: str, ip: str) -> UUID:
    """The user id for these credentials, or one generic error whatever was wrong."""
    email = normalize_email(email)[:320]
    now = clock.now()
    async with db.connection() as conn:
        failures = await conn.fetchrow(
            """
            SELECT count(*) FILTER (WHERE email = $1) AS by_email, count(*) AS by_ip
            FROM login_attempt
            WHERE NOT succeeded AND at > $3 AND (email = $1 OR ip = $2)
            """,
            email,
            ip,
            now - THROTTLE_WINDOW,
        )
        if failures["by_email"] >= MAX_FAILURES_PER_EMAIL or failures["by_ip"] >= MAX_FAILURES_PER_IP:
            raise TooManyRequests(
                "Too many sign-in attempts. Wait a few minutes, or reset your password.",
                retry_after=int(THROTTLE_WINDOW.total_seconds()),
            )
        row = await conn.fetchrow("SELECT id, password_hash FROM app_user WHERE email = $1", email)
    ok = await verify_password(row["password_hash"] if row else None, password)
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO login_attempt (email, ip, succeeded, at) VALUES ($1, $2, $3, $4)", email, ip[:64], ok, now
        )
    if not ok or row is None:
        raise Invalid(GENERIC_LOGIN_ERROR)
    return row["id"]
