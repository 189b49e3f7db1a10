"""The org's agents as SCIM resources (draft-abbey-scim-agent-extension-00): an identity provider
creates, renames, pauses and deletes the org's agents; the agents page, the audit log and the
agent's own tokens follow; another org's token reaches none of them."""

from __future__ import annotations

import asyncio

from tests.factories import add_api_token, add_workflow, bearer, events

SCIM_JSON = "application/scim+json"
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def test_an_idp_runs_an_agents_lifecycle_and_the_portal_follows(agents_idp, su, client_for):
    w, c = agents_idp, agents_idp.idp
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


async def test_an_agent_with_workflows_is_not_deleted_and_another_orgs_token_reaches_nothing(agents_idp, su, make_world):
    w, c = agents_idp, agents_idp.idp
    r = await c.delete(f"{w.base}/Agents/{w.agent_used}")  # the world's agent runs a workflow
    assert r.status_code == 409 and "workflow" in r.json()["detail"]
    other = await make_world()
    _, theirs = await add_api_token(su, other.org, "scim", manages_agents=True)
    for method, path in (("GET", f"/Agents/{w.agent_used}"), ("DELETE", f"/Agents/{w.agent_used}"), ("GET", "/Agents")):
        r = await c.request(method, f"/scim/v2/orgs/{w.org.slug}{path}", headers=bearer(theirs))
        assert r.status_code == 404, (method, path, r.status_code)
    listed = (await c.get(f"/scim/v2/orgs/{other.org.slug}/Agents", headers=bearer(theirs))).json()
    assert str(w.agent_used) not in {a["id"] for a in listed["Resources"]}
    assert await su.fetchval("SELECT count(*) FROM agent WHERE id = $1", w.agent_used) == 1


async def test_a_pause_and_resume_in_the_portal_outlive_what_the_idp_last_said(agents_idp, su, client_for):
    """The IdP pauses an agent, someone resumes it on its page: a later unrelated PATCH from the
    IdP (a new description) leaves it running, and the IdP reads ``active: true``."""
    w, c = agents_idp, agents_idp.idp
    c.headers["Content-Type"] = SCIM_JSON
    agent = (await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "Night shift", "active": True})).json()
    r = await c.patch(f"{w.base}/Agents/{agent['id']}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]})
    assert r.json()["active"] is False
    owner = await client_for(w.users["owner"])
    page = f"/orgs/{w.org.slug}/agents/{agent['id']}"
    assert (await owner.post(f"{page}/status", {"status": "active"})).status_code == 303
    assert (await c.get(f"{w.base}/Agents/{agent['id']}")).json()["active"] is True

    async def found(expression: str) -> bool:  # the filter matches what the resource shows
        listed = (await c.get(f"{w.base}/Agents", params={"filter": f'name eq "Night shift" and {expression}'})).json()
        return listed["totalResults"] == 1
    assert await found("active eq true") and not await found("active eq false")
    r = await c.patch(f"{w.base}/Agents/{agent['id']}", json={"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "description", "value": "Runs at night"}]})
    assert r.status_code == 200 and r.json()["active"] is True, r.text
    assert await su.fetchval("SELECT status FROM agent WHERE id = $1", agent["id"]) == "active"
    # and the other way: the IdP said active, the portal paused it; an IdP rename keeps it paused
    assert (await owner.post(f"{page}/status", {"status": "paused"})).status_code == 303
    r = await c.patch(f"{w.base}/Agents/{agent['id']}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "name", "value": "Day shift"}]})
    assert r.json()["active"] is False and await su.fetchval("SELECT status FROM agent WHERE id = $1", agent["id"]) == "paused"
    assert (await c.get(f"{w.base}/Agents", params={"filter": 'name eq "Day shift" and active eq false'})).json()["totalResults"] == 1
    fresh = (await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "Never told"})).json()
    assert "active" not in fresh  # running, and the IdP never said: absent, and absent to the filter too
    listed = (await c.get(f"{w.base}/Agents", params={"filter": 'name eq "Never told" and active pr'})).json()
    assert listed["totalResults"] == 0


async def test_control_characters_and_stale_versions_are_refused_and_change_nothing(agents_idp, su):
    w, c = agents_idp, agents_idp.idp
    c.headers["Content-Type"] = SCIM_JSON
    for body in ({"name": "Bell\x07bot"}, {"name": "Ok bot", "description": "escape \x1b[31m"}, {"name": "Ok bot", "agentType": "a\x85b"},
                 {"name": "Ok bot", "displayName": "line\nbreak"}):
        r = await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], **body})
        assert r.status_code == 400 and r.json()["scimType"] == "invalidValue" and "control" in r.json()["detail"], (body, r.text)
    r = await c.post(f"{w.base}/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops\x00\x01"})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1 AND name = 'Ok bot'", w.org.id) == 0
    multi = await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "Ok bot", "description": "Two\r\nlines\tand a tab"})
    assert multi.status_code == 201 and multi.json()["description"] == "Two\r\nlines\tand a tab"  # kept as the IdP wrote it

    agent = multi.json()
    stale = 'W/"1"'
    for method, body in (("PUT", {"schemas": [AGENT], "name": "Renamed"}),
                         ("PATCH", {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "name", "value": "Renamed"}]}),
                         ("DELETE", None)):
        r = await c.request(method, f"{w.base}/Agents/{agent['id']}", json=body, headers={"If-Match": stale})
        assert r.status_code == 412, (method, r.status_code, r.text)
    assert await su.fetchval("SELECT name FROM agent WHERE id = $1", agent["id"]) == "Ok bot"
    r = await c.delete(f"{w.base}/Agents/{agent['id']}", headers={"If-Match": agent["meta"]["version"]})
    assert r.status_code == 204
    member = (await c.get(f"{w.base}/Users", params={"filter": f'userName eq "{w.users["member"].email}"'})).json()["Resources"][0]
    assert (await c.delete(f"{w.base}/Users/{member['id']}", headers={"If-Match": stale})).status_code == 412
    assert await su.fetchval("SELECT count(*) FROM membership WHERE id = $1", member["id"]) == 1


async def test_a_token_made_for_people_reaches_no_agent(idp, su):
    """A SCIM token is for Users and Groups unless its owner ticked "Agents too": for the others
    the service has no Agents, in discovery too, and nothing about an agent changes."""
    w, c = idp, idp.idp  # the default token: people and teams
    h: dict[str, str] = {}
    types = (await c.get(f"{w.base}/ResourceTypes", headers=h)).json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    schemas = (await c.get(f"{w.base}/Schemas", headers=h)).json()
    assert AGENT not in {s["id"] for s in schemas["Resources"]}
    assert (await c.get(f"{w.base}/Users", headers=h)).status_code == 200
    for method, path, body in (("GET", "/Agents", None), ("GET", f"/Agents/{w.agent_free}", None),
                               ("POST", "/Agents", {"schemas": [AGENT], "name": "Sneaky"}),
                               ("PATCH", f"/Agents/{w.agent_free}", {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}),
                               ("DELETE", f"/Agents/{w.agent_free}", None)):
        r = await c.request(method, f"{w.base}{path}", json=body, headers={**h, "Content-Type": SCIM_JSON})
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert await su.fetchval("SELECT status FROM agent WHERE id = $1", w.agent_free) == "active"
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1 AND name = 'Sneaky'", w.org.id) == 0


async def test_deleting_an_agent_that_gains_a_workflow_while_it_waits_is_a_409(agents_idp, su):
    """A workflow for the agent is being created (its transaction holds the agent's key) when the
    IdP's DELETE arrives: the DELETE waits for it, and once it commits the agent is in use, so the
    answer is 409 and the agent stays."""
    w, c = agents_idp, agents_idp.idp
    c.headers["Content-Type"] = SCIM_JSON
    agent = (await c.post(f"{w.base}/Agents", json={"schemas": [AGENT], "name": "Contested"})).json()
    tx = su.transaction()
    await tx.start()
    try:
        await add_workflow(su, w.org.id, agent["id"], name="Arrives first")
        delete = asyncio.create_task(c.delete(f"{w.base}/Agents/{agent['id']}"))
        await asyncio.sleep(0.5)
        assert not delete.done()  # waiting for the agent's row
    finally:
        await tx.commit()
    r = await delete
    assert r.status_code == 409, r.text
    assert "workflow" in r.json()["detail"]
    assert await su.fetchval("SELECT count(*) FROM agent WHERE id = $1", agent["id"]) == 1
