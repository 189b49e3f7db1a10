"""A person's own data (SPEC §14): what the portal holds about them, as JSON, and deleting the
account.

**Download** (``personal_data``): the account, its memberships, its sessions and the audit events
the person performed in the orgs they belong to. Every org is read through its scope.

**Deletion** (``delete_account``), after the password was checked (throttled, nothing held):

1. Refused while the person owns an org: ownership must move first (the page links to transfer).
2. In one transaction, each membership is locked after its org row (the order every member change
   takes) and deleted, with a ``member.left`` event in that org; their teams go with it.
3. In another (it reads every org's audit trail, which must not happen while those orgs are
   locked), ``erase_person`` — a database function, see its migration — pseudonymises the audit
   trail in every org, deletes invites, queued mail and sign-in attempts of the address, and
   deletes the account, its sessions with it. If the person joined an org in between, nothing is
   erased and they are told.

The pseudonym is stable (a keyed hash of the account id): one person's actions still read as one
actor's in each org's history, and nothing links them back to the person. The trade-off between
erasure and accountability is explained in docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID

import asyncpg

from portal import clock
from portal.accounts import service
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.config import get_settings
from portal.db import engine as db
from portal.errors import Conflict, Invalid
from portal.members import service as members
from portal.records import iso, json_value
from portal.tenancy import scope as tenancy

AUDIT_LIMIT = 10_000  # events per org in a download; the org's audit log has the rest


class OwnsOrgs(Conflict):
    """The person still owns orgs: each needs another owner (or deleting) first."""

    def __init__(self, orgs: list[dict[str, Any]]):
        names = ", ".join(o["name"] for o in orgs)
        super().__init__(f"You own {names}. Transfer ownership (or delete the organization) before deleting your account.")
        self.orgs = orgs


def pseudonym(user_id: UUID) -> str:
    digest = hmac.new(get_settings().secret_key.encode(), f"erased-person:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"deleted-person-{digest[:12]}"


_MEMBERSHIPS = """-- unscoped: the person's own memberships, in every org (policy own_memberships)
SELECT m.id, m.org_id, m.role, m.created_at, m.suspended_at, o.slug, o.name, r.name AS role_name
FROM membership m
JOIN organization o ON o.id = m.org_id
LEFT JOIN org_role r ON r.org_id = m.org_id AND r.id = m.custom_role_id
WHERE m.user_id = $1
ORDER BY m.org_id
"""


async def owned_orgs(user_id: UUID) -> list[dict[str, Any]]:
    async with db.transaction(user_id=user_id) as conn:
        rows = await conn.fetch(_MEMBERSHIPS, user_id)
    return [{"slug": r["slug"], "name": r["name"]} for r in rows if r["role"] == "owner"]


async def personal_data(user_id: UUID) -> dict[str, Any]:
    async with db.transaction(user_id=user_id) as conn:
        account = await conn.fetchrow(
            "SELECT id, email, name, created_at, email_verified_at FROM app_user WHERE id = $1", user_id
        )
        sessions = await conn.fetch(
            "SELECT created_at, last_seen_at, revoked_at, ip, user_agent FROM user_session WHERE user_id = $1 ORDER BY created_at",
            user_id,
        )
        memberships = await conn.fetch(_MEMBERSHIPS, user_id)
        orgs = []
        for m in memberships:
            scope = await tenancy.enter(m["org_id"])
            events = await scope.fetch(
                "SELECT created_at, action, target_type, target_id, target_label, before, after, ip FROM audit_event "
                "WHERE org_id = {org} AND actor_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                user_id, AUDIT_LIMIT,
            )
            orgs.append({
                "organization": {"id": str(m["org_id"]), "slug": m["slug"], "name": m["name"]},
                "role": m["role_name"] if m["role"] == "custom" else m["role"],
                "member_since": iso(m["created_at"]),
                "suspended_at": iso(m["suspended_at"]) if m["suspended_at"] else None,
                "audit_events_performed": [
                    {
                        "at": iso(e["created_at"]), "action": e["action"],
                        "target": {"type": e["target_type"], "id": e["target_id"], "label": e["target_label"]},
                        "before": json_value(e["before"]), "after": json_value(e["after"]), "ip": e["ip"],
                    }
                    for e in events
                ],
            })
    return {
        "format": "praesidia-personal-data",
        "format_version": 1,
        "generated_at": iso(clock.now()),
        "account": {
            "id": str(account["id"]), "email": account["email"], "name": account["name"],
            "created_at": iso(account["created_at"]),
            "email_verified_at": iso(account["email_verified_at"]) if account["email_verified_at"] else None,
        },
        "sessions": [
            {"created_at": iso(s["created_at"]), "last_seen_at": iso(s["last_seen_at"]), "revoked_at": iso(s["revoked_at"]),
             "ip": s["ip"], "user_agent": s["user_agent"]}
            for s in sessions
        ],
        "memberships": orgs,
    }


async def delete_account(user_id: UUID, email: str, password: str, ip: str) -> dict[str, Any]:
    """Delete the account of ``user_id`` (see the module's docstring); returns what was done."""
    if not password:
        raise Invalid("Enter your password to delete your account.", field_errors={"password": "Enter your password."})
    if owned := await owned_orgs(user_id):  # before the hash: a refusal costs no argon2 slot
        raise OwnsOrgs(owned)
    await service.reauthenticate(email, password, ip)  # throttled like sign-in; holds nothing
    left = await _leave_every_org(user_id, ip)
    # Then, in a transaction of its own (it reads every org's audit trail, which must not happen
    # while the orgs above are locked): the rest, by the database's erase_person.
    try:
        async with db.transaction(user_id=user_id) as conn:
            counts = await conn.fetchval("SELECT erase_person($1, $2)", user_id, pseudonym(user_id))
    except asyncpg.ObjectInUseError:  # joined an org in the moment between: nothing was erased
        raise Conflict("You joined an organization a moment ago. Leave it (or delete your account again).") from None
    return {"orgs_left": left, **json_value(counts)}


@members.race_safe  # a lock cycle or timeout with a change in one of the orgs: a 409, nothing left
async def _leave_every_org(user_id: UUID, ip: str) -> list[str]:
    """End each membership as a departure: the org row, then the membership (the order every
    member change takes), deleted and recorded as ``member.left`` in that org, as a member's own
    leaving is. One transaction."""
    left = []
    async with db.transaction(user_id=user_id) as conn:
        account = await conn.fetchrow("SELECT email, name FROM app_user WHERE id = $1", user_id)
        if account is None:
            raise Conflict("This account no longer exists.")
        for m in await conn.fetch(_MEMBERSHIPS, user_id):
            scope = await tenancy.enter(m["org_id"])
            await conn.execute("SELECT 1 FROM organization WHERE id = $1 FOR NO KEY UPDATE", m["org_id"])
            member = await members.lock_membership(scope, m["id"])
            if member is None:
                continue  # removed meanwhile
            if member["role"] == "owner":  # made owner since the check above
                raise OwnsOrgs([{"slug": m["slug"], "name": m["name"]}])
            await scope.execute("DELETE FROM membership WHERE org_id = {org} AND id = $1", m["id"])
            await audit.record_as(
                scope, actor_id=user_id, actor_email=account["email"], ip=ip, action=Action.MEMBER_LEFT,
                target=("membership", m["id"], f"{account['name']} <{account['email']}>"),
                before={**members.who_left(member), "reason": "account deleted"},
            )
            left.append(m["slug"])
    return left
