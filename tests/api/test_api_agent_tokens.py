"""Agent identities (SPEC §11, SECURITY 41): a token issued to an agent acts as that agent and
nothing else; pausing the agent suspends it, deleting the agent revokes it, on the very next call,
and a pause racing an in-flight call is ordered by the agent row's lock."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.concurrency import wait_until_blocked_on_lock
from tests.factories import DEFINITION, Client, add_agent, add_api_token, add_connection, add_workflow, events, unique


@pytest.fixture
async def agent_api(make_world, su, app):
    """A world whose ``agent_used`` (it runs ``workflow``) holds a token: ``w.agent``, a client with it."""
    w = await make_world()
    w.agent_token_id, token = await add_api_token(su, w.org, agent_id=w.agent_used, name="worker")
    c = Client(app)
    c.http.headers["Authorization"] = f"Bearer {token}"
    w.agent, w.token = c.http, token
    w.base = f"/api/v1/orgs/{w.org.slug}"
    yield w
    await c.aclose()


async def test_an_owner_issues_an_agent_token_on_the_agent_s_page(make_world, client_for, su, app):
    w = await make_world()
    owner = await client_for(w.users["owner"])
    page = f"/orgs/{w.org.slug}/agents/{w.agent_free}"
    r = await owner.post(f"{page}/tokens", {"name": "Production worker", "expires_in_days": "30"})
    assert r.status_code == 200 and 'id="new-token"' in r.text
    token = re.search(r'id="new-token">(prt_[A-Za-z0-9_-]+)<', r.text).group(1)
    stored = await su.fetchrow("SELECT role, agent_id, token_hash FROM api_token WHERE org_id = $1 AND name = 'Production worker'", w.org.id)
    assert stored["role"] == "agent" and stored["agent_id"] == w.agent_free and token not in str(dict(stored))
    again = await owner.get(page)
    assert "Production worker" in again.text and token not in again.text and token[:12] in again.text  # once, then the prefix
    created = (await events(su, w.org, "agent.token_created"))[0]
    assert json.loads(created["after"])["name"] == "Production worker" and token not in created["after"]

    program = Client(app)
    program.http.headers["Authorization"] = f"Bearer {token}"
    assert (await program.http.get(f"/api/v1/orgs/{w.org.slug}/agent")).json()["id"] == str(w.agent_free)
    bad = await owner.post(f"{page}/tokens", {"name": "", "expires_in_days": "0"})
    assert bad.status_code == 422 and "id=\"new-token\"" not in bad.text

    token_id = await su.fetchval("SELECT id FROM api_token WHERE org_id = $1 AND name = 'Production worker'", w.org.id)
    assert f'action="{page}/tokens/{token_id}/revoke"' in (await owner.get(page)).text
    r = await owner.post(f"{page}/tokens/{token_id}/revoke", {})
    assert r.status_code == 303
    refused = await program.http.get(f"/api/v1/orgs/{w.org.slug}/agent")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    await program.aclose()

    # The org's token page lists tokens with a role; an agent's are on its own page.
    assert f'id="token-{token_id}"' not in (await owner.get(f"/orgs/{w.org.slug}/api-tokens")).text
    viewer = await client_for(w.users["billing_admin"])
    assert (await viewer.post(f"{page}/tokens", {"name": "Nope"})).status_code == 403
    assert "Agent tokens" not in (await viewer.get(page)).text


async def test_an_agent_token_reads_its_own_agent_and_nothing_else(agent_api, su, make_world):
    w, c = agent_api, agent_api.agent
    me = await c.get(f"{w.base}/agent")
    assert me.status_code == 200 and me.json()["id"] == str(w.agent_used)
    mine = (await c.get(f"{w.base}/agent/workflows")).json()
    other_workflow = await add_workflow(su, w.org.id, w.agent_free)
    assert [x["id"] for x in mine["items"]] == [str(w.workflow)]
    assert str(other_workflow) not in (await c.get(f"{w.base}/agent/workflows")).text

    for method, path in [("GET", "/agents"), ("GET", f"/agents/{w.agent_free}"), ("GET", f"/agents/{w.agent_used}"),
                         ("GET", "/connections"), ("GET", f"/connections/{w.connection}"), ("GET", "/workflows"),
                         ("PATCH", f"/agents/{w.agent_used}"), ("POST", "/agents"), ("GET", "/teams"), ("DELETE", f"/workflows/{w.workflow}")]:
        r = await c.request(method, w.base + path, json={"status": "active"})
        assert r.status_code == 403, (method, path, r.status_code)

    other = await make_world()
    for path in ("/agent", "/agent/workflows", "/agents"):
        assert (await c.get(f"/api/v1/orgs/{other.org.slug}{path}")).status_code == 404  # another org: as if none


async def test_an_agent_sees_the_config_of_its_workflows_connections_never_a_secret(agent_api, su):
    w, c = agent_api, agent_api.agent
    used = await add_connection(su, w.org.id, "Ops Slack")
    by_id = await add_connection(su, w.org.id)
    await add_connection(su, w.org.id, "Unrelated")
    steps = [{"id": "post", "type": "tool", "tool": "slack.post", "connection": "Ops Slack"},
             {"id": "also", "type": "tool", "tool": "slack.post", "connection": str(by_id)}]
    await su.execute("UPDATE workflow SET definition = $2::jsonb WHERE id = $1", w.workflow, json.dumps({**DEFINITION, "steps": steps}))
    r = await c.get(f"{w.base}/agent/connections")
    assert r.status_code == 200
    assert {x["id"] for x in r.json()["items"]} == {str(used), str(by_id)}
    assert all(set(x) == {"id", "name", "kind", "config"} for x in r.json()["items"])
    assert "not-a-real-ciphertext" not in r.text and "secret" not in r.text
    # Another agent's workflow naming a connection doesn't give this agent that connection.
    other_agent = await add_agent(su, w.org.id)
    elsewhere = await add_workflow(su, w.org.id, other_agent)
    steps2 = [{"id": "x", "type": "tool", "tool": "t", "connection": "Unrelated"}]
    await su.execute("UPDATE workflow SET definition = $2::jsonb WHERE id = $1", elsewhere, json.dumps({**DEFINITION, "steps": steps2}))
    assert "Unrelated" not in (await c.get(f"{w.base}/agent/connections")).text


async def test_an_agent_records_its_runs_in_the_audit_log(agent_api, su, client_for):
    w, c = agent_api, agent_api.agent
    r = await c.post(f"{w.base}/agent/events", json={"action": "run_started", "workflow_id": str(w.workflow), "payload": {"run_id": "r-1"}})
    assert r.status_code == 201, r.text
    assert r.json()["action"] == "agent.run_started" and r.json()["target_type"] == "workflow"
    event = (await events(su, w.org, "agent.run_started"))[0]
    assert json.loads(event["after"]) == {"run_id": "r-1"} and event["target_id"] == str(w.workflow)
    agent_name = await su.fetchval("SELECT name FROM agent WHERE id = $1", w.agent_used)
    assert event["actor_token_id"] == w.agent_token_id and event["actor_label"] == f"Agent “{agent_name}” (token “worker”)"
    log = await (await client_for(w.users["owner"])).get(f"/orgs/{w.org.slug}/audit")
    assert f"Agent “{agent_name}” (token “worker”)" in log.text

    itself = await c.post(f"{w.base}/agent/events", json={"action": "run_finished"})
    assert itself.status_code == 201 and itself.json()["target_id"] == str(w.agent_used)
    before = len(await events(su, w.org))
    for body, code in [({"action": "created"}, 400), ({"action": "deleted"}, 400), ({"action": "run_started", "payload": {"api_key": "sk-1"}}, 422),
                       ({"action": "run_started", "payload": {"blob": "x" * 5000}}, 422),
                       ({"action": "run_started", "payload": {"note": "Authorization: Bearer abc.def"}}, 422),
                       ({"action": "tool_called", "payload": {"args": ["--key", "sk-live-0123456789abcdef"]}}, 422),
                       ({"action": "run_started", "workflow_id": str(await add_workflow(su, w.org.id, w.agent_free))}, 404)]:
        refused = await c.post(f"{w.base}/agent/events", json=body)
        assert refused.status_code == code, (body, refused.status_code, refused.text)
    assert len(await events(su, w.org)) == before  # nothing refused wrote anything

    key = {"Idempotency-Key": unique("k")}
    first = await c.post(f"{w.base}/agent/events", json={"action": "tool_called"}, headers=key)
    second = await c.post(f"{w.base}/agent/events", json={"action": "tool_called"}, headers=key)
    assert first.status_code == second.status_code == 201 and second.headers["idempotent-replayed"] == "true"
    assert len(await events(su, w.org, "agent.tool_called")) == 1


async def test_pausing_suspends_resuming_restores_deleting_revokes(agent_api, su, client_for):
    w, c = agent_api, agent_api.agent
    owner = await client_for(w.users["owner"])
    page = f"/orgs/{w.org.slug}/agents/{w.agent_used}"
    assert (await owner.post(f"{page}/status", {"status": "paused"})).status_code == 303
    r = await c.get(f"{w.base}/agent")
    assert r.status_code == 401 and "paused" in r.json()["detail"] and r.headers["www-authenticate"].startswith("Bearer")
    assert (await owner.post(f"{page}/status", {"status": "active"})).status_code == 303
    assert (await c.get(f"{w.base}/agent")).status_code == 200

    # Deleting the agent (its workflow first) revokes its tokens: still listed, never usable again.
    await su.execute("DELETE FROM workflow WHERE id = $1", w.workflow)
    assert (await owner.post(f"{page}/delete", {})).status_code == 303
    row = await su.fetchrow("SELECT agent_id, revoked_at FROM api_token WHERE id = $1", w.agent_token_id)
    assert row["agent_id"] is None and row["revoked_at"] is not None
    r = await c.get(f"{w.base}/agent")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_a_token_stops_when_its_creator_can_no_longer_manage_resources(agent_api, su):
    w, c = agent_api, agent_api.agent
    creator = w.users["member"]
    token_id, token = await add_api_token(su, w.org, agent_id=w.agent_used, created_by=creator)
    c.headers["Authorization"] = f"Bearer {token}"
    assert (await c.get(f"{w.base}/agent")).status_code == 200
    await su.execute("UPDATE membership SET role = 'billing_admin' WHERE org_id = $1 AND user_id = $2", w.org.id, creator.id)
    r = await c.get(f"{w.base}/agent")
    assert r.status_code == 401 and "suspended" in r.json()["detail"]


async def test_a_pause_that_commits_first_refuses_the_waiting_call(agent_api, database, su):
    """The pause holds the agent row; the call waits for it, then sees the pause: 401, nothing written."""
    w, c = agent_api, agent_api.agent
    before = len(await events(su, w.org))
    pauser = await database.cluster.superuser_connect()
    try:
        tx = pauser.transaction()
        await tx.start()
        await pauser.execute("UPDATE agent SET status = 'paused', updated_at = now() WHERE id = $1", w.agent_used)
        call = asyncio.create_task(c.post(f"{w.base}/agent/events", json={"action": "run_started"}))
        await wait_until_blocked_on_lock(su)
        await tx.commit()
        r = await call
    finally:
        await pauser.close()
    assert r.status_code == 401 and "paused" in r.json()["detail"]
    assert len(await events(su, w.org)) == before


async def test_a_call_in_flight_finishes_before_the_pause(agent_api, database, su, client_for):
    """The call holds the agent row (FOR SHARE) until it commits; the pause waits for it, and the
    next call is refused. (The call is held in its last statement by a competing, uncommitted
    write of the same idempotency key.)"""
    w, c = agent_api, agent_api.agent
    owner = await client_for(w.users["owner"])
    key = unique("k")
    holder = await database.cluster.superuser_connect()
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(
            """INSERT INTO api_idempotency (org_id, token_id, key, request_hash, status, body) VALUES ($1, $2, $3, 'x', 201, '')""",
            w.org.id, w.agent_token_id, key,
        )
        call = asyncio.create_task(c.post(f"{w.base}/agent/events", json={"action": "run_started"}, headers={"Idempotency-Key": key}))
        await wait_until_blocked_on_lock(su)  # the call, on the key
        pause = asyncio.create_task(owner.post(f"/orgs/{w.org.slug}/agents/{w.agent_used}/status", {"status": "paused"}))
        await wait_until_blocked_on_lock(su, count=2)  # and the pause, on the agent row the call holds
        await tx.rollback()
        r, p = await call, await pause
    finally:
        await holder.close()
    assert r.status_code == 201 and p.status_code == 303
    assert len(await events(su, w.org, "agent.run_started")) == 1
    assert (await c.get(f"{w.base}/agent")).status_code == 401
