"""Idempotent creation and the per-token rate limit (SPEC §11): ten concurrent POSTs with one
``Idempotency-Key`` create one agent; the key with another body is a 409; a token past
``API_RATE`` gets 429 with ``Retry-After``, counted across processes in PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses

from portal.config import get_settings, set_settings
from tests.factories import Client, add_api_token


async def test_ten_concurrent_posts_with_one_key_create_one_agent(make_world, su, app):
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
