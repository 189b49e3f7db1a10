"""Starting and ending sessions (sign-in, sign-out, "sign out everywhere", password reset) and
their cookie.

Signing in always issues a new id (no fixation). Reading a session from its cookie is the request
layer's part (``portal.web.sessions``: the cookie's name, its hash, the signed-in user).
"""

from __future__ import annotations

import secrets
from uuid import UUID

from litestar.datastructures import Cookie

from portal import clock
from portal.config import get_settings
from portal.db import engine as db
from portal.web.sessions import COOKIE, token_hash

__all__ = ["COOKIE", "clear_cookie", "cookie", "create", "revoke", "revoke_all", "token_hash"]


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
