"""``/api/v1/orgs/{slug}/agents`` (SPEC §11): the agents resource as JSON, with the pages'
validation, permissions and audit events; keyset pages with a ``next`` link; PATCH with
``If-Match`` → 412 on a stale version; every role's token gets exactly its role's answers."""

from __future__ import annotations

import json

import pytest

from tests.access_matrix import AGENT, API_ACCESS, SPEC_HOLDERS
from tests.factories import Client, add_api_token, bearer, events, unique
from tests.routes import api_routes, api_walk, fill



@pytest.fixture
async def program(make_world, su, app):
    """A world and a program holding a member-role token of its owner's."""
    w = await make_world()
    w.token_id, token = await add_api_token(su, w.org, "member", name="CI")
    c = Client(app)
    c.http.headers.update(bearer(token))
    w.program = c
    w.base = f"/api/v1/orgs/{w.org.slug}/agents"
    yield w
    await c.aclose()


async def test_create_read_update_delete_through_the_api(program, su, client_for):
    w, c = program, program.program
    r = await c.request("POST", w.base, json={"name": "Triage bot", "model": "claude-sonnet-4-5", "description": "Sorts tickets."})
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["name"] == "Triage bot" and agent["status"] == "active" and agent["workflows"] == 0
    assert r.headers["location"] == f"{w.base}/{agent['id']}"
    etag = r.headers["etag"]
    got = await c.get(r.headers["location"])
    assert got.status_code == 200 and got.json() == agent and got.headers["etag"] == etag

    r = await c.request("PATCH", f"{w.base}/{agent['id']}", json={"status": "paused"}, headers={"If-Match": etag})
    assert r.status_code == 200 and r.json()["status"] == "paused" and r.headers["etag"] != etag
    stale = await c.request("PATCH", f"{w.base}/{agent['id']}", json={"name": "Renamed"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
    assert (await su.fetchval("SELECT name FROM agent WHERE id = $1", agent["id"])) == "Triage bot"

    for body in ({"name": "", "model": "gpt-4.1"}, {"name": "x", "model": "has spaces"}, {"name": "x\u0000", "model": "gpt-4.1"}, {"model": "gpt-4.1"}):
        bad = await c.request("POST", w.base, json=body)
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json"), body
        assert bad.json()["errors"], body
    taken = await c.request("POST", w.base, json={"name": "TRIAGE BOT", "model": "gpt-4.1"})
    assert taken.status_code == 409 and "already has this name" in taken.json()["detail"]
    injected = await c.request("POST", w.base, json={"name": "Elsewhere?", "model": "gpt-4.1", "org_id": "00000000-0000-0000-0000-000000000000"})
    assert injected.status_code == 201  # unknown fields are ignored: the org is the token's
    assert await su.fetchval("SELECT org_id FROM agent WHERE id = $1", injected.json()["id"]) == w.org.id

    assert (await c.request("DELETE", f"{w.base}/{agent['id']}")).status_code == 204
    assert (await c.get(f"{w.base}/{agent['id']}")).status_code == 404
    created = (await events(su, w.org, "agent.created"))[0]
    assert created["actor_token_id"] == w.token_id and created["actor_label"] == "API token “CI”"
    assert created["actor_id"] == w.users["owner"].id  # and who created the token
    assert json.loads(created["after"])["name"] == "Triage bot"
    owner = await client_for(w.users["owner"])
    log = await owner.get(f"/orgs/{w.org.slug}/audit")
    assert "API token “CI”" in log.text and f"created by {w.users['owner'].email}" in log.text


async def test_lists_are_keyset_pages_with_a_next_link(program, su):
    w, c = program, program.program
    await su.executemany("INSERT INTO agent (org_id, name, model) VALUES ($1, $2, 'gpt-4.1')", [(w.org.id, f"Bulk {i:03}") for i in range(25)])
    total = await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1", w.org.id)
    seen, url, pages = [], f"{w.base}?limit=10", 0
    while url:
        r = await c.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [a["name"] for a in body["items"]]
        url, pages = body["next"], pages + 1
    assert len(seen) == total == len(set(seen)) and pages == -(-total // 10)
    assert seen == sorted(seen, key=lambda n: (n.lower(),))
    await su.executemany("INSERT INTO agent (org_id, name, model) VALUES ($1, $2, 'gpt-4.1')", [(w.org.id, f"R&D #{i}") for i in range(3)])
    first = (await c.get(w.base, params={"limit": 2, "q": "r&d #"})).json()
    second = (await c.get(first["next"])).json()  # the search survives the next link, & and # included
    assert [a["name"] for a in first["items"] + second["items"]] == ["R&D #0", "R&D #1", "R&D #2"]
    assert (await c.get(f"{w.base}?limit=201")).status_code in (400, 422)
    assert (await c.get(f"{w.base}?after=%00garbage")).status_code == 200  # a malformed cursor starts over


@pytest.mark.parametrize("role", ["member", "billing_admin", "compliance_officer", "agent", "scim", "scim+agents"])  # never the owner's (SPEC §11)
async def test_every_role_s_token_gets_exactly_its_role_s_answers(role, make_world, su, snapshot, app):
    """The principal axis of the isolation matrix for the API routes: a token of each role, an
    agent's token and a SCIM token (with and without "Agents too"), on every API route, against
    the checked-in table; a denial writes nothing."""
    w = await make_world()
    scim_agents = role == "scim+agents"
    role = "scim" if scim_agents else role
    _, token = await add_api_token(su, w.org, role, agent_id=w.agent_used if role == "agent" else None, manages_agents=scim_agents)
    c = Client(app)
    c.http.headers.update(bearer(token))
    checked = 0
    for method, path in api_walk(app):
        requirement = API_ACCESS.get(f"{method} {path}")
        if requirement is None:
            continue  # the public OpenAPI document
        url = fill(path, w.params)
        before = await snapshot(w.org.id)
        r = await c.request(method, url, json={"name": unique("api"), "model": "gpt-4.1"})
        if role in SPEC_HOLDERS[requirement] or (role == "agent" and requirement == AGENT):
            assert r.status_code not in (401, 403, 404) and r.status_code < 500, (role, method, path, r.status_code, r.text[:200])
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
            assert await snapshot(w.org.id) == before, (role, method, path)
        checked += 1
    assert checked == len(API_ACCESS)
    await c.aclose()


async def test_the_openapi_document_describes_the_api(app):
    c = Client(app)
    r = await c.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "description": "An org API token (prt_…)"}
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {mp for mp in api_routes(app) if f"{mp[0]} {mp[1]}" in API_ACCESS}  # every API route, nothing else
    for path in doc["paths"].values():
        for op in path.values():
            assert op["security"] == [{"bearer": []}]
    assert not any(p.startswith("/orgs") for p in doc["paths"])  # the pages are not part of it
    await c.aclose()
