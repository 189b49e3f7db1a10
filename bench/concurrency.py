"""Concurrency under load, in one app process: 100 concurrent invite accepts (distinct invites,
distinct people) and 50 concurrent role changes in one org. Reports throughput and errors, and
checks the invariants afterwards (exactly one membership per accepted invite, one owner, one audit
event per change)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

import httpx

from portal.accounts.sessions import token_hash


async def _client(app, su, user_id, n: int) -> httpx.AsyncClient:
    token = secrets.token_urlsafe(32)
    await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), user_id)
    c = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(f"10.77.{n // 250}.{n % 250 + 1}", 40000)),
        base_url="http://bench",
        cookies={"portal_session": token},
    )
    await c.get("/healthz")  # CSRF cookie
    return c


async def _post(c: httpx.AsyncClient, url: str, data: dict) -> httpx.Response:
    return await c.post(url, data={**data, "_csrf_token": c.cookies.get("portal_csrf")})


async def run(app, su) -> dict:
    out: dict = {}
    org_id, owner_id = await su.fetchrow(
        "SELECT o.id, m.user_id FROM organization o JOIN membership m ON m.org_id = o.id AND m.role = 'owner' WHERE o.slug = 'bench-small'"
    )
    # 100 people, each with an invite of their own (the token is known here; only its hash is stored)
    people, tokens = [], []
    for i in range(100):
        uid = await su.fetchval(
            "INSERT INTO app_user (email, name, password_hash, email_verified_at) VALUES ($1, $2, 'x', now()) RETURNING id", f"invitee{i}@bench.test", f"Invitee {i}"
        )
        token = secrets.token_urlsafe(32)
        await su.execute(
            """INSERT INTO invite (org_id, email, role, token_hash, invited_by, expires_at)
               VALUES ($1, $2, 'member', $3, $4, now() + interval '7 days')""",
            org_id, f"invitee{i}@bench.test", hashlib.sha256(token.encode()).hexdigest(), owner_id,
        )
        people.append(uid)
        tokens.append(token)
    clients = [await _client(app, su, uid, i) for i, uid in enumerate(people)]
    started = time.perf_counter()
    results = await asyncio.gather(*(_post(c, f"/invites/{t}/accept", {}) for c, t in zip(clients, tokens)))
    wall = time.perf_counter() - started
    joined = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND user_id = ANY($2)", org_id, people)
    accepted = await su.fetchval("SELECT count(*) FROM invite WHERE org_id = $1 AND accepted_at IS NOT NULL", org_id)
    out["accepts"] = {
        "requests": len(results), "seconds": wall, "per_second": len(results) / wall,
        "errors": sum(r.status_code != 303 for r in results), "memberships": joined, "invites_accepted": accepted,
        "invariant": joined == 100 and accepted == 100,
    }
    for c in clients:
        await c.aclose()

    # 50 concurrent role changes by the owner of the large org
    large, large_owner = await su.fetchrow(
        "SELECT o.id, m.user_id FROM organization o JOIN membership m ON m.org_id = o.id AND m.role = 'owner' WHERE o.slug = 'bench-large'"
    )
    targets = [r["id"] for r in await su.fetch(
        "SELECT id FROM membership WHERE org_id = $1 AND role = 'member' ORDER BY created_at DESC LIMIT 50", large
    )]
    owner = await _client(app, su, large_owner, 900)
    events_before = await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'member.role_changed'", large)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(_post(owner, f"/orgs/bench-large/members/{t}/role", {"role": "billing_admin"}) for t in targets)
    )
    wall = time.perf_counter() - started
    changed = await su.fetchval("SELECT count(*) FROM membership WHERE id = ANY($1) AND role = 'billing_admin'", targets)
    owners = await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1 AND role = 'owner'", large)
    events = await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'member.role_changed'", large) - events_before
    out["role_changes"] = {
        "requests": len(results), "seconds": wall, "per_second": len(results) / wall,
        "errors": sum(r.status_code != 303 for r in results), "changed": changed, "owners": owners, "audit_events": events,
        "invariant": changed == 50 and owners == 1 and events == 50,
    }
    await owner.aclose()
    return out
