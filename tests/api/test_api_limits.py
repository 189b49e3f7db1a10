"""Idempotent creation and the per-token limits (SPEC §11): ten concurrent POSTs with one
``Idempotency-Key`` create one agent; the key with another body is a 409; a token past
``API_RATE`` gets 429 with ``Retry-After``, counted across processes in PostgreSQL; a token's
calls in flight are bounded like an account's; its last use is noted outside the call."""

from __future__ import annotations

import asyncio
import dataclasses

from portal.config import get_settings, set_settings
from tests.factories import Client, add_api_token


async def test_ten_concurrent_posts_with_one_key_create_one_agent(make_world, su, app, monkeypatch):
    from portal import config

    monkeypatch.setattr(config, "_settings", dataclasses.replace(config.get_settings(), per_principal_concurrency=20))  # all ten in flight
    w = await make_world()
    _, token = await add_api_token(su, w.org)
    url = f"/api/v1/orgs/{w.org.slug}/agents"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "deploy-42"}
    clients = [Client(app) for _ in range(10)]
    body = {"name": "Once only", "model": "gpt-4.1"}
    results = await asyncio.gather(*(c.request("POST", url, json=body, headers=headers) for c in clients))
    assert [r.status_code for r in results] == [201] * 10, [r.text[:120] for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 9
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1 AND name = 'Once only'", w.org.id) == 1
    assert await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'agent.created'", w.org.id) == 1
    other = await clients[0].request("POST", url, json={**body, "name": "Something else"}, headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    fresh = await clients[0].request("POST", url, json={**body, "name": "Twice"}, headers={"Authorization": f"Bearer {token}"})
    again = await clients[0].request("POST", url, json={**body, "name": "Twice 2"}, headers={"Authorization": f"Bearer {token}"})
    assert fresh.status_code == again.status_code == 201 and fresh.json()["id"] != again.json()["id"]  # no key: no replay
    for c in clients:
        await c.aclose()


async def test_a_token_past_its_rate_gets_429_with_retry_after(make_world, su, app):
    w = await make_world()
    _, token = await add_api_token(su, w.org)
    _, other = await add_api_token(su, w.org)
    before = get_settings()
    set_settings(dataclasses.replace(before, api_rate=5))
    try:
        c = Client(app)
        url = f"/api/v1/orgs/{w.org.slug}/agents"
        codes = [(await c.get(url, headers={"Authorization": f"Bearer {token}"})).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429], codes
        r = await c.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await c.get(url, headers={"Authorization": f"Bearer {other}"})).status_code == 200  # per token
        await c.aclose()
    finally:
        set_settings(before)


async def test_a_token_has_a_bounded_share_of_calls_in_flight(make_world, su, app, database):
    """At most PER_PRINCIPAL_CONCURRENCY calls of one token in flight per process: one more is a
    429 at once (before any database turn); another token is not affected."""
    from tests.concurrency import wait_until_blocked_on_lock

    w = await make_world()
    _, token = await add_api_token(su, w.org)
    _, other = await add_api_token(su, w.org)
    before = get_settings()
    set_settings(dataclasses.replace(before, per_principal_concurrency=2))
    url = f"/api/v1/orgs/{w.org.slug}/agents"
    holder = await database.cluster.superuser_connect()
    clients = [Client(app) for _ in range(4)]
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM organization WHERE id = $1 FOR UPDATE", w.org.id)  # unsafe calls queue on it
        held = [asyncio.create_task(c.request("POST", url, json={"name": f"Held {i}", "model": "gpt-4.1"}, headers={"Authorization": f"Bearer {token}"}))
                for i, c in enumerate(clients[:2])]
        await wait_until_blocked_on_lock(su, count=2)
        third = await clients[2].request("GET", url, headers={"Authorization": f"Bearer {token}"})
        assert third.status_code == 429 and third.headers["retry-after"] == "1" and "this token" in third.json()["detail"]
        assert (await clients[3].request("GET", url, headers={"Authorization": f"Bearer {other}"})).status_code == 200
        await tx.rollback()
        assert [(await t).status_code for t in held] == [201, 201]
    finally:
        set_settings(before)
        await holder.close()
        for c in clients:
            await c.aclose()


async def test_last_used_is_written_outside_the_call_at_most_once_a_minute(make_world, su, app):
    w = await make_world()
    token_id, token = await add_api_token(su, w.org)
    c = Client(app)
    url = f"/api/v1/orgs/{w.org.slug}/agents"
    assert await su.fetchval("SELECT last_used_at FROM api_token WHERE id = $1", token_id) is None
    assert (await c.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    first = await su.fetchval("SELECT last_used_at FROM api_token WHERE id = $1", token_id)
    assert first is not None
    assert (await c.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert await su.fetchval("SELECT last_used_at FROM api_token WHERE id = $1", token_id) == first  # within the minute
    await su.execute("UPDATE api_token SET last_used_at = now() - interval '2 minutes' WHERE id = $1", token_id)
    assert (await c.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 200
    assert await su.fetchval("SELECT last_used_at > now() - interval '1 minute' FROM api_token WHERE id = $1", token_id)
    await su.execute("UPDATE api_token SET revoked_at = now(), last_used_at = NULL WHERE id = $1", token_id)
    assert (await c.get(url, headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert await su.fetchval("SELECT last_used_at FROM api_token WHERE id = $1", token_id) is None  # a revoked token is not "used"
    await c.aclose()


async def test_an_idempotency_key_counts_for_a_day(make_world, su, app):
    """A record past its day is ignored (not yet swept or not): the key creates anew."""
    w = await make_world()
    token_id, token = await add_api_token(su, w.org)
    c = Client(app)
    url, headers = f"/api/v1/orgs/{w.org.slug}/agents", {"Authorization": f"Bearer {token}", "Idempotency-Key": "nightly"}
    first = await c.request("POST", url, json={"name": "Day one", "model": "gpt-4.1"}, headers=headers)
    assert first.status_code == 201
    await su.execute("UPDATE api_idempotency SET created_at = now() - interval '25 hours' WHERE token_id = $1", token_id)
    later = await c.request("POST", url, json={"name": "Day two", "model": "gpt-4.1"}, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"] and "idempotent-replayed" not in later.headers
    again = await c.request("POST", url, json={"name": "Day two", "model": "gpt-4.1"}, headers=headers)
    assert again.json()["id"] == later.json()["id"] and again.headers["idempotent-replayed"] == "true"
    await c.aclose()


async def test_a_token_s_hash_alone_changes_nothing_but_its_last_use(make_world, su, app_conn):
    """The policy that lets the counting statement note a token's last use (the hash, no org
    entered) allows nothing more: not un-revoking, re-rolling or moving the token."""
    import asyncpg
    import pytest

    w = await make_world()
    token_id, token = await add_api_token(su, w.org)
    await su.execute("UPDATE api_token SET revoked_at = now() WHERE id = $1", token_id)
    token_hash = await su.fetchval("SELECT token_hash FROM api_token WHERE id = $1", token_id)
    other = await make_world()
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.token_hash', $1, true)", token_hash)
        assert await app_conn.execute("UPDATE api_token SET last_used_at = now() WHERE id = $1", token_id) == "UPDATE 1"
    for change in ("revoked_at = NULL", "role = 'billing_admin'", f"org_id = '{other.org.id}'", "expires_at = now() + interval '300 days'"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with app_conn.transaction():
                await app_conn.execute("SELECT set_config('app.token_hash', $1, true)", token_hash)
                await app_conn.execute(f"UPDATE api_token SET {change} WHERE id = $1", token_id)
    assert await su.fetchval("SELECT revoked_at IS NOT NULL AND org_id = $2 FROM api_token WHERE id = $1", token_id, w.org.id)


async def test_counting_a_call_never_waits_for_the_token_s_row(make_world, su, app, database):
    """A call in flight holds its token's row (FOR SHARE); noting another call's last use skips
    it rather than queueing every later call of that token behind it, each on a connection."""
    w = await make_world()
    token_id, token = await add_api_token(su, w.org)
    await su.execute("UPDATE api_token SET last_used_at = now() - interval '1 hour' WHERE id = $1", token_id)
    holder = await database.cluster.superuser_connect()
    c = Client(app)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM api_token WHERE id = $1 FOR SHARE", token_id)
        r = await asyncio.wait_for(c.get(f"/api/v1/orgs/{w.org.slug}/agents", headers={"Authorization": f"Bearer {token}"}), 5)
        assert r.status_code == 200
        await tx.rollback()
    finally:
        await holder.close()
        await c.aclose()
