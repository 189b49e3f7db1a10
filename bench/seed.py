"""A realistic large dataset, seeded with set-based SQL in seconds (as the superuser, below RLS).

1,000 organizations, 100,000 users, memberships spread over them; one large org ("bench-large",
10,000 members, 10,000 agents, 3,000 workflows, 100,000 audit events) and one small org
("bench-small", 10 members, 10 agents, 3 workflows, 100 audit events); the rest of the agents,
workflows and events spread over the other orgs — 20,000 agents, 5,000 workflows and 200,000
audit events in all. Every user has the same pre-computed argon2id hash (password BENCH_PASSWORD).
"""

from __future__ import annotations

import time

import asyncpg
from argon2 import PasswordHasher

BENCH_PASSWORD = "bench-password-123"
N_USERS = 100_000
N_ORGS = 1_000  # including the large and the small org
LARGE, SMALL = "bench-large", "bench-small"
LARGE_MEMBERS, SMALL_MEMBERS = 10_000, 10


async def seed(conn: asyncpg.Connection, *, scale: float = 1.0) -> dict[str, float]:
    """Seed the dataset; return {step: seconds}."""
    timings: dict[str, float] = {}
    n_users = int(N_USERS * scale)
    n_orgs = max(3, int(N_ORGS * scale))
    large_members = min(LARGE_MEMBERS, n_users // 2)
    pw = PasswordHasher().hash(BENCH_PASSWORD)

    async def step(name: str, sql: str, *args) -> None:
        t = time.perf_counter()
        await conn.execute(sql, *args)
        timings[name] = time.perf_counter() - t

    await step(
        "users",
        """INSERT INTO app_user (email, name, password_hash, created_at)
           SELECT 'user' || g || '@bench.test', 'Bench User ' || g, $2, now() - (g || ' minutes')::interval
           FROM generate_series(1, $1) g""",
        n_users, pw,
    )
    await step(
        "orgs",
        """INSERT INTO organization (slug, name)
           SELECT CASE g WHEN 1 THEN 'bench-large' WHEN 2 THEN 'bench-small' ELSE 'bench-org-' || g END,
                  CASE g WHEN 1 THEN 'Large Bench Org' WHEN 2 THEN 'Small Bench Org' ELSE 'Bench Org ' || g END
           FROM generate_series(1, $1) g""",
        n_orgs,
    )
    await conn.execute("INSERT INTO billing_settings (org_id, seat_limit) SELECT id, 100000 FROM organization WHERE slug LIKE 'bench-%'")
    # users 1..L → large org; L+1..L+10 → small org; the rest round-robin over the other orgs.
    await step(
        "memberships",
        """
        WITH rest AS (SELECT array_agg(id ORDER BY slug) AS ids, count(*)::int AS c
                      FROM organization WHERE slug LIKE 'bench-org-%'),
             large AS (SELECT id FROM organization WHERE slug = 'bench-large'),
             small AS (SELECT id FROM organization WHERE slug = 'bench-small'),
             u AS (SELECT id, split_part(split_part(email, '@', 1), 'user', 2)::int AS n
                   FROM app_user WHERE email LIKE '%@bench.test')
        INSERT INTO membership (org_id, user_id, role, created_at)
        SELECT CASE WHEN u.n <= $1 THEN (SELECT id FROM large)
                    WHEN u.n <= $1 + 10 THEN (SELECT id FROM small)
                    ELSE (SELECT ids FROM rest)[1 + u.n % (SELECT c FROM rest)] END,
               u.id,
               CASE WHEN u.n = 1 OR u.n = $1 + 1 THEN 'owner'
                    WHEN u.n > $1 + 10 AND u.n <= $1 + 10 + (SELECT c FROM rest) THEN 'owner'
                    WHEN u.n % 17 = 0 THEN 'billing_admin' WHEN u.n % 13 = 0 THEN 'compliance_officer'
                    ELSE 'member' END,
               now() - (u.n || ' minutes')::interval
        FROM u
        """,
        large_members,
    )
    await step(
        "agents",
        """
        INSERT INTO agent (org_id, name, description, model, status)
        SELECT org_id, 'agent-' || g, 'Bench agent number ' || g, 'gpt-5-mini', CASE WHEN g % 7 = 0 THEN 'paused' ELSE 'active' END
        FROM (SELECT id AS org_id, slug FROM organization WHERE slug LIKE 'bench-%') o,
             LATERAL generate_series(1, CASE o.slug WHEN 'bench-large' THEN $1 WHEN 'bench-small' THEN 10 ELSE $2 END) g
        """,
        int(10_000 * scale) or 10, max(1, int(10_000 * scale) // max(1, n_orgs - 2)),
    )
    await step(
        "workflows",
        """
        INSERT INTO workflow (org_id, name, description, definition, agent_id, enabled)
        SELECT a.org_id, 'workflow-' || a.rn, 'Bench workflow', '{"steps": [{"kind": "prompt", "text": "hello"}]}'::jsonb, a.id, a.rn % 5 <> 0
        FROM (SELECT id, org_id, row_number() OVER (PARTITION BY org_id ORDER BY id) AS rn FROM agent) a
        JOIN organization o ON o.id = a.org_id
        WHERE a.rn <= CASE o.slug WHEN 'bench-large' THEN $1 WHEN 'bench-small' THEN 3 ELSE 2 END
        """,
        int(3_000 * scale) or 3,
    )
    await step(
        "audit",
        """
        INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, after, ip, created_at)
        SELECT o.id, NULL, 'user' || (g % 500 + 1) || '@bench.test',
               (ARRAY['agent.created','agent.updated','workflow.created','member.role_changed','billing.updated'])[1 + g % 5],
               'agent', g::text, 'agent-' || g, jsonb_build_object('n', g), '10.0.0.' || (g % 250),
               now() - (g || ' seconds')::interval
        FROM (SELECT id, slug FROM organization WHERE slug LIKE 'bench-%') o,
             LATERAL generate_series(1, CASE o.slug WHEN 'bench-large' THEN $1 WHEN 'bench-small' THEN 100 ELSE $2 END) g
        """,
        int(100_000 * scale) or 100, max(1, int(100_000 * scale) // max(1, n_orgs - 2)),
    )
    t = time.perf_counter()
    await conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now: visibility map + statistics
    timings["vacuum_analyze"] = time.perf_counter() - t
    return timings


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    out = {}
    for table in ("app_user", "organization", "membership", "agent", "workflow", "audit_event"):
        out[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
    out["large_members"] = await conn.fetchval(
        "SELECT count(*) FROM membership m JOIN organization o ON o.id = m.org_id WHERE o.slug = 'bench-large'"
    )
    out["owners_per_org_max"] = await conn.fetchval(
        "SELECT max(c) FROM (SELECT count(*) c FROM membership WHERE role = 'owner' GROUP BY org_id) x"
    )
    return out
