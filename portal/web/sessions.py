"""Server-side sessions, as the request sees them: the cookie, and the signed-in user it names.

The cookie holds 256 random bits; the ``user_session`` table keeps only their SHA-256, so a
database read does not yield a usable cookie. Sessions end on sign-out (server-side), after an
idle period and after an absolute lifetime. Starting and ending sessions, and setting or clearing
the cookie, is the accounts package's business (``portal.accounts.sessions``); this module only
reads them, for the session middleware (``portal.web.auth``), which runs below every package of
routes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

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
    # The user's orgs (slug, name, role) for the layout's switcher, when read with the session
    # (``load(…, with_orgs=True)``); None when not read.
    orgs: tuple[dict, ...] | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# On an org's own pages the org statement reads the switcher's orgs: the session alone, then.
_LOAD_SESSION = """
SELECT s.id, s.user_id, s.last_seen_at, u.email, u.name, NULL::jsonb AS my_orgs
FROM user_session s JOIN app_user u ON u.id = s.user_id
WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.last_seen_at > $2 AND s.created_at > $3
"""

_LOAD = """-- unscoped: the signed-in user's own memberships, across orgs, under the own_memberships RLS policy
WITH me AS MATERIALIZED (
    SELECT s.id, s.user_id, s.last_seen_at, u.email, u.name,
           -- The user's own memberships are visible (RLS policy own_memberships) once app.user_id
           -- names them: set here, for this statement's implicit transaction only, from the
           -- session row just found. The org list below is read after it (a subplan per row of
           -- ``me``); were it ever read before, the list would come back empty, never wider.
           set_config('app.user_id', s.user_id::text, true) AS for_orgs
    FROM user_session s JOIN app_user u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.revoked_at IS NULL
      AND s.last_seen_at > $2 AND s.created_at > $3
)
SELECT me.id, me.user_id, me.last_seen_at, me.email, me.name,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('slug', o.slug, 'name', o.name, 'role', m.role, 'role_name', r.name)
                                  ORDER BY lower(o.name), o.slug), '[]'::jsonb)
        FROM membership m JOIN organization o ON o.id = m.org_id
        -- a custom role's name: readable for the roles one holds (RLS policy held_roles)
        LEFT JOIN org_role r ON r.org_id = m.org_id AND r.id = m.custom_role_id
        WHERE m.user_id = me.user_id AND m.suspended_at IS NULL) AS my_orgs  -- a suspended membership opens nothing
FROM me
"""


async def load(token: str | None, *, with_orgs: bool = False) -> SessionUser | None:
    """The signed-in user of the session cookie ``token``, or None. ``with_orgs``: also the
    user's orgs for the switcher, in the same statement (pages outside an org show it)."""
    if not token or len(token) > 200:
        return None
    settings = get_settings()
    now = clock.now()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            _LOAD if with_orgs else _LOAD_SESSION, token_hash(token), now - settings.session_idle, now - settings.session_absolute
        )
        if row is None:
            return None
        if now - row["last_seen_at"] > TOUCH_EVERY:
            await conn.execute("UPDATE user_session SET last_seen_at = $2 WHERE id = $1", row["id"], now)
    orgs = tuple(json.loads(row["my_orgs"])) if row["my_orgs"] is not None else None
    return SessionUser(row["user_id"], row["email"], row["name"], row["id"], orgs)
