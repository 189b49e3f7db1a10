"""Server-side sessions in PostgreSQL.

The cookie holds 256 random bits; the table keeps only their SHA-256, so a database read does not
yield a usable cookie. Sessions end on sign-out (server-side), after an idle period and after an
absolute lifetime; signing in always issues a new id (no fixation).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from litestar.datastructures import Cookie

from portal import clock
from portal.config import get_settings
from portal.db import engine as db

COOKIE = "portal_session"
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionUser:
    id: UUID
    email: str
    name: str
    session_id: UUID


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def load(token: str | None) -> SessionUser | None:
    if not token or len(token) > 200:
        return None
    settings = get_settings()
    now = clock.now()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """
            SELECT s.id, s.user_id, s.last_seen_at, u.email, u.name
            FROM user_session s JOIN app_user u ON u.id = s.user_id
            WHERE s.token_hash = $1 AND s.revoked_at IS NULL
              AND s.last_seen_at > $2 AND s.created_at > $3
            """,
            token_hash(token),
            now - settings.session_idle,
            now - settings.session_absolute,
        )
        if row is None:
            return None
        if now - row["last_seen_at"] > TOUCH_EVERY:
            await conn.execute("UPDATE user_session SET last_seen_at = $2 WHERE id = $1", row["id"], now)
    return SessionUser(row["user_id"], row["email"], row["name"], row["id"])


async def create(user_id: UUID, *, ip: str = "", user_agent: str = "", replacing: str | None = None) -> str:
    """Start a new session (and end the one the browser had, if any). Returns the cookie value."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    async with db.connection() as conn:
        async with conn.transaction():
            if replacing:
                await conn.execute(
                    "UPDATE user_session SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
                    token_hash(replacing),
                    now,
                )
            await conn.execute(
                """INSERT INTO user_session (token_hash, user_id, created_at, last_seen_at, ip, user_agent)
                   VALUES ($1, $2, $3, $3, $4, $5)""",
                token_hash(token),
                user_id,
                now,
                ip[:64],
                user_agent[:300],
            )
    return token


async def revoke(session_id: UUID) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE user_session SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", session_id, clock.now()
        )


async def revoke_all(user_id: UUID) -> int:
    async with db.connection() as conn:
        status = await conn.execute(
            "UPDATE user_session SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", user_id, clock.now()
        )
    return int(status.split()[-1])


def cookie(token: str) -> Cookie:
    settings = get_settings()
    return Cookie(
        key=COOKIE,
        value=token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=int(settings.session_absolute.total_seconds()),
    )


def clear_cookie() -> Cookie:
    return Cookie(key=COOKIE, value="", max_age=0, expires=0, path="/", httponly=True, samesite="lax")
