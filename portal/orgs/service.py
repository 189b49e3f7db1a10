"""Organizations: creation, slug rules, the dashboard's figures."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

import asyncpg

from portal import ratelimit
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Invalid
from portal.invites.service import PENDING
from portal.tenancy import scope as tenancy
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm, Role

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset(
    {
        "new", "create", "admin", "administrator", "api", "app", "www", "static", "assets", "login",
        "logout", "signup", "signin", "register", "account", "accounts", "settings", "orgs", "org",
        "invite", "invites", "help", "support", "billing", "about", "root", "system", "security",
        "praesidia", "healthz", "readyz", "metrics", "status", "docs", "public", "null", "undefined", "me", "you",
    }
)


def validate_slug(slug: str) -> str | None:
    if not slug:
        return "Choose a URL name."
    if len(slug) < 3 or len(slug) > 40:
        return "Use 3 to 40 characters."
    if not SLUG_RE.match(slug):
        return "Use lowercase letters, digits and hyphens, starting and ending with a letter or digit."
    if "--" in slug:
        return "Don't use two hyphens in a row."
    if slug in RESERVED_SLUGS:
        return "That name is reserved. Choose another."
    return None


def validate_org_name(name: str) -> str | None:
    if not name:
        return "Enter the organization's name."
    if len(name) > 100:
        return "Use at most 100 characters."
    if any(ord(c) < 32 for c in name):
        return "Names can't contain control characters."
    return None


def suggest_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)[:40].strip("-")


async def _check_create_rate(user_id: UUID) -> None:
    """Orgs are free, and each one is a new invite budget and a new name in our mail: a quota per
    account (SPEC §9), counted in PostgreSQL so it holds across processes."""
    limit = get_settings().org_create_rate
    await ratelimit.hit(
        f"org-create:{user_id}",
        limit=limit,
        window=timedelta(days=1),
        message=f"You have created {limit} organizations in the last day, the most we allow. Try again tomorrow.",
    )


async def create_org(*, user_id: UUID, user_email: str, name: str, slug: str, ip: str) -> str:
    """Create an org with the creator as owner; return its slug."""
    name, slug = name.strip(), slug.strip().lower()
    errors = {k: v for k, v in {"name": validate_org_name(name), "slug": validate_slug(slug)}.items() if v}
    if errors:
        raise Invalid("Please correct the highlighted fields.", field_errors=errors)
    try:
        async with db.transaction(user_id=user_id) as conn:
            await _check_create_rate(user_id)  # in this transaction: a refused creation counts nothing
            org_id = await conn.fetchval("INSERT INTO organization (slug, name) VALUES ($1, $2) RETURNING id", slug, name)
            scope = await tenancy.enter(org_id)
            await scope.execute("INSERT INTO membership (org_id, user_id, role) VALUES ({org}, $1, 'owner')", user_id)
            await scope.execute("INSERT INTO billing_settings (org_id) VALUES ({org})")
            await audit.record_as(
                scope, actor_id=user_id, actor_email=user_email, ip=ip, action=Action.ORG_CREATED,
                target=("organization", org_id, name), after={"name": name, "slug": slug},
            )
    except asyncpg.UniqueViolationError:
        raise Invalid("Please correct the highlighted fields.", field_errors={"slug": "That URL is already taken."}) from None
    return slug


# Figures shown on the dashboard: key, label, SQL counting one tenant table. Domains add theirs
# here; the key is also the domain whose list page (route ``<key>.list``) the figure links to.
# Members: the org row's exact count, kept by triggers (migrations/…30t13…), whatever the org's size.
DASHBOARD_COUNTS: list[tuple[str, str, str]] = [
    ("members", "Members", "SELECT member_count FROM organization WHERE id = {org}"),
    ("agents", "Agents", "SELECT count(*) FROM agent WHERE org_id = {org}"),
    ("workflows", "Workflows", "SELECT count(*) FROM workflow WHERE org_id = {org}"),
    ("connections", "Connections", "SELECT count(*) FROM connection WHERE org_id = {org}"),
    ("teams", "Teams", "SELECT count(*) FROM team WHERE org_id = {org}"),
    ("invites", "Pending invites", f"SELECT count(*) FROM invite WHERE org_id = {{org}} AND {PENDING} AND expires_at > now()"),
]


async def dashboard(ctx: OrgContext) -> dict:
    selects = ", ".join(f"({sql}) AS {key}" for key, _, sql in DASHBOARD_COUNTS)
    counts = dict(await ctx.scope.fetchrow(f"SELECT {selects}"))
    recent = []
    if ctx.can(Perm.AUDIT):
        recent = await ctx.scope.fetch(
            """SELECT action, actor_email, target_label, created_at FROM audit_event
               WHERE org_id = {org} ORDER BY created_at DESC, id DESC LIMIT 8"""
        )
    owner = await ctx.scope.fetchrow(
        """SELECT u.name, u.email FROM membership m JOIN app_user u ON u.id = m.user_id
           WHERE m.org_id = {org} AND m.role = 'owner'"""
    )
    return {
        "counts": [(label, counts[key], key) for key, label, _ in DASHBOARD_COUNTS],
        "recent": recent,
        "owner": owner,
        "is_owner": ctx.role == Role.OWNER,
    }


async def rename_org(ctx: OrgContext, name: str) -> None:
    name = name.strip()
    if error := validate_org_name(name):
        raise Invalid("Please correct the highlighted fields.", field_errors={"name": error})
    if name == ctx.org.name:
        return
    # The organization row is global (it is the tenant itself); lock it like every org-level change.
    conn = db.current_connection()
    await conn.execute("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", ctx.org.id)
    await conn.execute("UPDATE organization SET name = $2 WHERE id = $1", ctx.org.id, name)
    await audit.record(ctx, Action.ORG_RENAMED, target=("organization", ctx.org.id, name), before={"name": ctx.org.name}, after={"name": name})
