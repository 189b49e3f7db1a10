"""Pages make a fixed number of SQL statements, whatever the number of rows: the same count for an
org with 10 of everything and one with 1,000."""

from __future__ import annotations

import json

import pytest

from bench.recorder import count_statements
from tests.factories import DEFINITION

PAGES = [
    "",
    "/agents",
    "/agents?q=agent&page=2",
    "/agents/{agent}",
    "/workflows",
    "/workflows?page=3",
    "/workflows/{workflow}",
    "/connections",
    "/connections/{connection}",
    "/teams",
    "/teams/{team}",
    "/billing",
    "/audit",
    "/audit?action=agent.created",
    "/access-report",
]
# A page's statements: the session, the org and tenant, the page's own queries and the switcher.
MAX_STATEMENTS = 14


async def seed(su, org, n: int) -> dict[str, str]:
    """``n`` agents, workflows, connections, teams, members (all in the first team) and events."""
    o = org.id
    await su.execute(
        "INSERT INTO agent (org_id, name, model) SELECT $1, 'Agent ' || i, 'gpt-4.1' FROM generate_series(1, $2) i", o, n
    )
    agent = await su.fetchval("SELECT id FROM agent WHERE org_id = $1 ORDER BY name LIMIT 1", o)
    await su.execute(
        """INSERT INTO workflow (org_id, name, definition, agent_id)
           SELECT $1, 'Workflow ' || i, $3::jsonb, $2 FROM generate_series(1, $4) i""",
        o, agent, json.dumps(DEFINITION), n,
    )
    await su.execute(
        "INSERT INTO connection (org_id, name, kind) SELECT $1, 'Connection ' || i, 'webhook' FROM generate_series(1, $2) i", o, n
    )
    await su.execute("INSERT INTO team (org_id, name) SELECT $1, 'Team ' || i FROM generate_series(1, $2) i", o, n)
    users = await su.fetch(
        """INSERT INTO app_user (email, name, password_hash)
           SELECT $1 || '-' || i || '@example.test', 'Person ' || i, 'x' FROM generate_series(1, $2) i RETURNING id""",
        org.slug, n,
    )
    await su.executemany("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, 'member')", [(o, u["id"]) for u in users])
    team = await su.fetchval("SELECT id FROM team WHERE org_id = $1 ORDER BY name LIMIT 1", o)
    await su.execute(
        "INSERT INTO team_member (org_id, team_id, membership_id) SELECT $1, $2, id FROM membership WHERE org_id = $1", o, team
    )
    await su.execute(
        """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_id, target_label, after)
           SELECT $1, m.user_id, 'someone@example.test', 'member.joined', 'membership', m.user_id::text, 'x', '{"role": "member"}'
           FROM membership m WHERE m.org_id = $1""",
        o,
    )
    await su.execute(
        """INSERT INTO audit_event (org_id, action, target_type, target_label)
           SELECT $1, 'agent.created', 'agent', 'Agent ' || i FROM generate_series(1, $2) i""",
        o, n,
    )
    return {
        "agent": str(agent),
        "workflow": str(await su.fetchval("SELECT id FROM workflow WHERE org_id = $1 LIMIT 1", o)),
        "connection": str(await su.fetchval("SELECT id FROM connection WHERE org_id = $1 LIMIT 1", o)),
        "team": str(team),
    }


async def statements_per_page(client, org, ids) -> dict[str, int]:
    counts = {}
    for page in PAGES:
        url = f"/orgs/{org.slug}" + page.format(**ids)
        await client.get(url)  # warm: prepared statements, template compilation
        with count_statements() as seen:
            r = await client.get(url)
        assert r.status_code == 200, url
        counts[page] = len(seen)
    return counts


async def test_statements_per_page_do_not_grow_with_rows(make_org, su, client_for):
    small, large = await make_org(), await make_org()
    small_ids, large_ids = await seed(su, small, 10), await seed(su, large, 1000)
    small_counts = await statements_per_page(await client_for(small.owner), small, small_ids)
    large_counts = await statements_per_page(await client_for(large.owner), large, large_ids)
    print("statements per page (10 rows / 1000 rows):", {p: (small_counts[p], large_counts[p]) for p in PAGES})
    assert small_counts == large_counts
    assert max(large_counts.values()) <= MAX_STATEMENTS, large_counts


@pytest.mark.parametrize("htmx", [False, True])
async def test_htmx_fragments_are_cheaper_still(make_org, su, client_for, htmx):
    org = await make_org()
    await seed(su, org, 30)
    c = await client_for(org.owner)
    headers = {"HX-Request": "true"} if htmx else {}
    await c.get(f"/orgs/{org.slug}/agents?q=1", headers=headers)
    with count_statements() as seen:
        r = await c.get(f"/orgs/{org.slug}/agents?q=1", headers=headers)
    assert r.status_code == 200
    assert len(seen) <= (8 if htmx else 10), seen
