"""The audit log viewer: newest first, filters, keyset pagination that is exact in both directions
and index-backed at scale, and the streamed CSV (chunked, formula-safe)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from litestar.response import Stream

from portal.audit import queries
from portal.tenancy.scope import TenantScope
from tests.factories import text_of

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


async def add_event(su, org_id, action="agent.created", *, at=None, actor=None, label="x", before=None, after=None, event_id=None):
    return await su.fetchval(
        """INSERT INTO audit_event (id, org_id, actor_id, actor_email, action, target_type, target_label, before, after, created_at)
           VALUES (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, 'agent', $6, $7::jsonb, $8::jsonb, coalesce($9, clock_timestamp()))
           RETURNING id""",
        event_id, org_id, actor.id if actor else None, actor.email if actor else None, action, label,
        json.dumps(before) if before is not None else None, json.dumps(after) if after is not None else None, at,
    )


def rows_of(r) -> list[str]:
    """Target labels in page order."""
    import re

    return re.findall(r'<span class="muted">agent</span> ([^<]+)</td>', r.text)


async def test_owner_and_compliance_officer_read_the_log_newest_first(world, su, client_for):
    for i in range(3):
        await add_event(su, world.org.id, label=f"event-{i}", at=T0 + timedelta(minutes=i), before={"status": "active"}, after={"status": "paused"})
    for role in ("owner", "compliance_officer"):
        c = await client_for(world.users[role])
        r = await c.get(f"/orgs/{world.org.slug}/audit")
        assert r.status_code == 200
        assert rows_of(r) == ["event-2", "event-1", "event-0"]
        assert "status" in r.text and "paused" in r.text  # before/after shown
    for role in ("billing_admin", "member"):
        c = await client_for(world.users[role])
        assert (await c.get(f"/orgs/{world.org.slug}/audit")).status_code == 403
        assert (await c.get(f"/orgs/{world.org.slug}/audit.csv")).status_code == 403


async def test_filters_by_actor_action_and_dates(world, su, client_for, make_org):
    owner, member = world.users["owner"], world.users["member"]
    await add_event(su, world.org.id, "agent.created", at=T0, actor=owner, label="a")
    await add_event(su, world.org.id, "agent.deleted", at=T0 + timedelta(days=1), actor=member, label="b")
    await add_event(su, world.org.id, "agent.created", at=T0 + timedelta(days=2), actor=member, label="c")
    await add_event(su, world.org.id, "agent.created", at=T0 + timedelta(days=3), label="system")
    other = await make_org()
    await add_event(su, other.id, "agent.created", at=T0, actor=member, label="other-org")
    c = await client_for(world.users["compliance_officer"])
    base = f"/orgs/{world.org.slug}/audit"
    assert rows_of(await c.get(base, params={"actor": member.email.upper()})) == ["c", "b"]
    assert rows_of(await c.get(base, params={"action": "agent.created"})) == ["system", "c", "a"]
    assert rows_of(await c.get(base, params={"action": "agent.created", "actor": member.email})) == ["c"]
    assert rows_of(await c.get(base, params={"from": "2026-03-02", "to": "2026-03-03"})) == ["c", "b"]
    assert rows_of(await c.get(base, params={"to": "2026-03-01"})) == ["a"]
    assert rows_of(await c.get(base, params={"actor": "nobody@example.test"})) == []
    r = await c.get(base, params={"action": "member.removed"})
    assert "No events match these filters" in r.text
    r = await c.get(base, params={"action": "agent.created"}, headers={"HX-Request": "true"})
    assert "<html" not in r.text and rows_of(r) == ["system", "c", "a"]


@pytest.mark.parametrize(
    "params,field,message",
    [
        ({"from": "yesterday"}, "from", "Use a date like 2026-01-31."),
        ({"to": "2026-02-30"}, "to", "Use a date like 2026-01-31."),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "to", "The end date is before the start date."),
        ({"action": "DROP TABLE; --"}, "action", "Actions look like"),
    ],
)
async def test_invalid_filters_explain_themselves(world, client_for, params, field, message):
    c = await client_for(world.users["owner"])
    r = await c.get(f"/orgs/{world.org.slug}/audit", params=params)
    assert r.status_code == 422 and message in text_of(r) and f'id="e-{field}"' in r.text
    r = await c.get(f"/orgs/{world.org.slug}/audit.csv", params=params)
    assert r.status_code == 422


async def test_keyset_pagination_visits_every_event_once_both_ways(world, su, client_for):
    """75 events, 20 of them sharing one timestamp: pages of 50 forward and back are exact."""
    labels = []
    for i in range(55):
        labels.append(f"e{i:03d}")
        await add_event(su, world.org.id, label=labels[-1], at=T0 + timedelta(seconds=i))
    tie = T0 + timedelta(seconds=30)
    for i in range(20):
        labels.append(f"t{i:03d}")
        await add_event(su, world.org.id, label=labels[-1], at=tie)
    expected = [
        r["target_label"]
        for r in await su.fetch("SELECT target_label FROM audit_event WHERE org_id = $1 ORDER BY created_at DESC, id DESC", world.org.id)
    ]
    c = await client_for(world.users["owner"])
    base = f"/orgs/{world.org.slug}/audit"
    first = await c.get(base)
    assert rows_of(first) == expected[:50] and "Newer" not in first.text
    older_link = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await c.get(older_link)
    assert rows_of(second) == expected[50:] and "Older" not in second.text
    newer_link = second.text.split('rel="prev" href="')[1].split('"')[0].replace("&amp;", "&")
    back = await c.get(newer_link)
    assert rows_of(back) == expected[:50]


@pytest.mark.parametrize("cursor", ["garbage", "%%%", "a" * 500, "MjAyNi0wMy0wMXxub3QtYS11dWlk", ""])
async def test_malformed_cursors_start_from_the_newest(world, su, client_for, cursor):
    await add_event(su, world.org.id, label="only")
    c = await client_for(world.users["owner"])
    for key in ("after", "before"):
        r = await c.get(f"/orgs/{world.org.slug}/audit", params={key: cursor})
        assert r.status_code == 200 and rows_of(r) == ["only"]


async def test_csv_is_streamed_in_keyset_chunks_and_formula_safe(world, su, client_for, monkeypatch, app):
    from portal.audit import routes

    assert routes.audit_csv.opt == {"permission": routes.Perm.AUDIT, "streaming": True}
    monkeypatch.setattr(queries, "CSV_CHUNK", 7)
    calls = []
    original = queries.fetch_events

    async def counted(*args, **kwargs):
        calls.append(kwargs.get("after"))
        return await original(*args, **kwargs)

    monkeypatch.setattr(queries, "fetch_events", counted)
    hostile = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "\tTab", "plain, with comma", 'quote "here"']
    for i in range(30):
        await add_event(su, world.org.id, label=hostile[i % len(hostile)], at=T0 + timedelta(seconds=i), after={"n": i})
    c = await client_for(world.users["compliance_officer"])
    r = await c.get(f"/orgs/{world.org.slug}/audit.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith(f'attachment; filename="{world.org.slug}-audit-log-')
    assert r.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == list(queries.CSV_COLUMNS)
    body = rows[1:]
    assert len(body) == 30
    assert [json.loads(row[9])["n"] for row in body] == list(range(29, -1, -1))  # newest first, none lost at chunk edges
    for row in body:
        assert not row[6].startswith(("=", "+", "-", "@", "\t")), row[6]
    assert "'=HYPERLINK(\"http://evil\")" in [row[6] for row in body]
    assert "plain, with comma" in [row[6] for row in body]
    assert len(calls) == 5 and calls[0] is None  # 30 rows in chunks of 7: five keyset reads
    # filters apply to the export
    r = await c.get(f"/orgs/{world.org.slug}/audit.csv", params={"to": "2025-01-01"})
    assert list(csv.reader(io.StringIO(r.text))) == [list(queries.CSV_COLUMNS)]


async def test_csv_route_returns_a_stream_not_a_body(world, client_for, monkeypatch):
    from portal.audit import routes

    seen = []
    original = routes.Stream

    def spy(*args, **kwargs):
        response = original(*args, **kwargs)
        seen.append(response)
        return response

    monkeypatch.setattr(routes, "Stream", spy)
    c = await client_for(world.users["owner"])
    assert (await c.get(f"/orgs/{world.org.slug}/audit.csv")).status_code == 200
    assert len(seen) == 1 and isinstance(seen[0], Stream)


def test_csv_cells_are_neutralized():
    assert queries.csv_cell("=1+1") == "'=1+1"
    assert queries.csv_cell("@cmd") == "'@cmd"
    assert queries.csv_cell("normal") == "normal"
    assert queries.csv_cell(None) == ""
    assert queries.csv_cell(datetime(2026, 1, 1, tzinfo=timezone.utc)) == "2026-01-01T00:00:00+00:00"


# -- scale ---------------------------------------------------------------------------------------

SCALE = 200_000


@pytest.fixture(scope="module")
async def big_org(su):
    """An org with SCALE events (5 actors, 12 actions, one per second), next to a noisy neighbour.
    Built once for the module, straight in SQL, and deleted afterwards."""
    from tests.factories import PASSWORD_HASH, unique

    orgs, actors = [], []
    for _ in range(2):
        slug = unique("big")
        orgs.append(await su.fetchval("INSERT INTO organization (slug, name) VALUES ($1, $1) RETURNING id", slug))
    for i in range(5):
        email = f"{unique('actor')}@example.test"
        user_id = await su.fetchval("INSERT INTO app_user (email, name, password_hash) VALUES ($1, $1, $2) RETURNING id", email, PASSWORD_HASH)
        await su.execute("INSERT INTO membership (org_id, user_id, role) VALUES ($1, $2, $3)", orgs[0], user_id, "owner" if i == 0 else "member")
        actors.append((user_id, email))
    for org_id, n in ((orgs[0], SCALE), (orgs[1], SCALE // 4)):
        await su.execute(
            """INSERT INTO audit_event (org_id, actor_id, actor_email, action, target_type, target_label, created_at)
               SELECT $1, ($3::uuid[])[1 + i % 5], ($4::text[])[1 + i % 5],
                      (ARRAY['agent.created','agent.updated','agent.deleted','workflow.created','workflow.updated',
                             'team.created','team.member_added','connection.created','connection.secret_replaced',
                             'billing.updated','member.joined','invite.created'])[1 + i % 12],
                      'agent', 'label ' || i, $5::timestamptz - i * interval '1 second'
               FROM generate_series(1, $2) i""",
            org_id, n, [a[0] for a in actors], [a[1] for a in actors], T0,
        )
    await su.execute("ANALYZE audit_event")
    yield orgs[0], actors
    await su.execute("DELETE FROM organization WHERE id = ANY($1::uuid[])", orgs)
    await su.execute("DELETE FROM app_user WHERE id = ANY($1::uuid[])", [a[0] for a in actors])


class _Capture:
    """Stands in for the request's scope: records the SQL fetch_events would run."""

    def __init__(self, org_id):
        self.org_id = org_id
        self.sql = self.args = None

    async def fetch(self, sql, *args):
        self.sql, self.args = TenantScope(self.org_id)._bind(sql, args)
        return []


async def plan_of(database, org_id, filters, actor_id=None, **cursor) -> dict:
    """EXPLAIN ANALYZE of the log's own query, as the app role with the tenant set."""
    capture = _Capture(org_id)
    ctx = type("Ctx", (), {"scope": capture})()
    original = queries._actor_id

    async def resolve(email):  # what the request would find in app_user
        return actor_id

    queries._actor_id = resolve
    try:
        await queries.fetch_events(ctx, filters, **cursor)
    finally:
        queries._actor_id = original
    conn = await asyncpg.connect(database.app_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.org_id', $1, true)", str(org_id))
            raw = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + capture.sql, *capture.args)
    finally:
        await conn.close()
    return json.loads(raw)[0]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize(
    "name,filters,deep",
    [
        ("newest page", queries.AuditFilters(), False),
        ("a page deep in the log", queries.AuditFilters(), True),
        ("by action", queries.AuditFilters(action="team.created"), True),
        ("by actor", queries.AuditFilters(actor="ACTOR"), True),
        ("by date range", queries.AuditFilters(date_from="2026-02-28", date_to="2026-02-28"), False),
    ],
)
async def test_pages_stay_index_backed_at_scale(big_org, database, name, filters, deep):
    org_id, actors = big_org
    actor_id = None
    if filters.actor:
        actor_id, email = actors[2]
        filters = queries.AuditFilters(actor=email)
    cursor = {}
    if deep:  # continue from an event ~90% of the way back
        cursor = {"after": (T0 - timedelta(seconds=int(SCALE * 0.9)), uuid.UUID(int=0))}
    plan = await plan_of(database, org_id, filters, actor_id, **cursor)
    top = plan["Plan"]
    kinds = {n["Node Type"] for n in nodes(top)}
    indexes = {n.get("Index Name") for n in nodes(top)} - {None}
    assert "Seq Scan" not in kinds and "Sort" not in kinds, (name, kinds)
    assert indexes and all(i.startswith("audit_event_org_") for i in indexes), (name, indexes)
    touched = sum(n.get("Shared Hit Blocks", 0) + n.get("Shared Read Blocks", 0) for n in [top])
    assert touched < 2_000, (name, touched)  # a few pages of index and heap, not the table
    assert plan["Execution Time"] < 250, (name, plan["Execution Time"])
    print(f"{name}: {plan['Execution Time']:.2f} ms, {touched} buffers, {sorted(kinds)}, {sorted(indexes)}")
