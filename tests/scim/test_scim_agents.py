"""The org's agents as SCIM resources (draft-abbey-scim-agent-extension-00): an identity provider
creates, renames, pauses and deletes the org's agents; the agents page, the audit log and the
agent's own tokens follow; another org's token reaches none of them."""

from __future__ import annotations

from tests.factories import add_api_token, bearer, events

SCIM_JSON = "application/scim+json"
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def test_an_idp_runs_an_agents_lifecycle_and_the_portal_follows(idp, su, client_for):
    w, c = idp, idp.idp
    types = (await c.get(f"{w.base}/ResourceTypes")).json()
    assert "Agent" in {t["name"] for t in types["Resources"]}
    c.headers["Content-Type"] = SCIM_JSON
    r = await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "Triage bot", "displayName": "Triage", "agentType": "assistant",
                                               "description": "Sorts the inbox", "externalId": "entra-42", "active": True})
    assert r.status_code == 201, r.text
    agent = r.json()
    assert (agent["name"], agent["displayName"], agent["agentType"], agent["active"]) == ("Triage bot", "Triage", "assistant", True)
    row = await su.fetchrow("SELECT name, model, status, description FROM agent WHERE org_id = $1 AND id = $2", w.org.id, agent["id"])
    assert dict(row) == {"name": "Triage bot", "model": "unassigned", "status": "active", "description": "Sorts the inbox"}
    assert (await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "triage BOT"})).json()["scimType"] == "uniqueness"

    found = (await c.get(f"{w.base}/Agents", params={"filter": 'externalId eq "entra-42"'})).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == agent["id"]
    paused = await c.patch(f"{w.base}/Agents/{agent['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False}, {"op": "replace", "path": "name", "value": "Inbox bot"}]})
    assert paused.status_code == 200 and paused.json()["active"] is False and paused.json()["name"] == "Inbox bot"
    assert await su.fetchval("SELECT status FROM agent WHERE id = $1", agent["id"]) == "paused"
    owner = await client_for(w.users["owner"])
    assert "Inbox bot" in (await owner.get(f"/orgs/{w.org.slug}/agents")).text

    token_id, _ = await add_api_token(su, w.org, agent_id=agent["id"])
    assert (await c.delete(f"{w.base}/Agents/{agent['id']}")).status_code == 204
    assert await su.fetchval("SELECT count(*) FROM agent WHERE id = $1", agent["id"]) == 0
    assert await su.fetchval("SELECT revoked_at IS NOT NULL FROM api_token WHERE id = $1", token_id)  # its token died with it
    trail = [(e["action"], e["actor_label"]) for e in await events(su, w.org) if e["target_type"] == "agent" and e["target_id"] == agent["id"]]
    assert [a for a, _ in trail] == ["agent.created", "agent.updated", "agent.deleted"]
    assert {who for _, who in trail} == {"SCIM: Okta"}


async def test_an_agent_with_workflows_is_not_deleted_and_another_orgs_token_reaches_nothing(idp, su, make_world):
    w, c = idp, idp.idp
    r = await c.delete(f"{w.base}/Agents/{w.agent_used}")  # the world's agent runs a workflow
    assert r.status_code == 409 and "workflow" in r.json()["detail"]
    other = await make_world()
    _, theirs = await add_api_token(su, other.org, "scim")
    for method, path in (("GET", f"/Agents/{w.agent_used}"), ("DELETE", f"/Agents/{w.agent_used}"), ("GET", "/Agents")):
        r = await c.request(method, f"/scim/v2/orgs/{w.org.slug}{path}", headers=bearer(theirs))
        assert r.status_code == 404, (method, path, r.status_code)
    listed = (await c.get(f"/scim/v2/orgs/{other.org.slug}/Agents", headers=bearer(theirs))).json()
    assert str(w.agent_used) not in {a["id"] for a in listed["Resources"]}
    assert await su.fetchval("SELECT count(*) FROM agent WHERE id = $1", w.agent_used) == 1
