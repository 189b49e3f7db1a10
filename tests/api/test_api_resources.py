"""The JSON API of workflows, connections and teams (SPEC §11): one generic set of routes per
resource declaration (``portal.api.resource``), each with its own checks, the pages' validation
and audit events, and a connection's secret write-only."""

from __future__ import annotations

import json

import pytest

from portal.resources import crypto
from tests.factories import DEFINITION, Client, add_api_token, bearer, events, unique



@pytest.fixture
async def api(make_world, su, app):
    """A world and a client holding a member-role token (resources.manage) of its owner's."""
    w = await make_world()
    w.token_id, token = await add_api_token(su, w.org, "member", name="CI")
    c = Client(app)
    c.http.headers.update(bearer(token))
    w.api = c.http  # JSON in, JSON out: no forms, no CSRF
    w.base = f"/api/v1/orgs/{w.org.slug}"
    yield w
    await c.aclose()


def bodies(w) -> dict[str, tuple[dict, dict]]:
    """Per resource: a creating body and a change."""
    return {
        "workflows": ({"name": unique("wf"), "agent_id": str(w.agent_free), "definition": DEFINITION}, {"enabled": False}),
        "connections": ({"name": unique("conn"), "kind": "slack", "config": {"workspace": "acme"}}, {"config": {"workspace": "other"}}),
        "teams": ({"name": unique("team"), "description": "On call"}, {"description": "Platform on call"}),
    }


@pytest.mark.parametrize("plural", ["workflows", "connections", "teams"])
async def test_each_resource_round_trips(plural, api, su):
    w, c = api, api.api
    create, change = bodies(w)[plural]
    r = await c.post(f"{w.base}/{plural}", json=create)
    assert r.status_code == 201, r.text
    item, etag = r.json(), r.headers["etag"]
    assert r.headers["location"] == f"{w.base}/{plural}/{item['id']}" and item["name"] == create["name"]
    got = await c.get(r.headers["location"])
    assert got.json() == item and got.headers["etag"] == etag
    listed = (await c.get(f"{w.base}/{plural}", params={"q": create["name"]})).json()
    assert listed == {"items": [item], "next": None}  # a list item is the item itself

    changed = await c.patch(r.headers["location"], json=change, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert all(changed.json()[k] == v for k, v in change.items())
    stale = await c.patch(r.headers["location"], json={"name": unique("late")}, headers={"If-Match": etag})
    assert stale.status_code == 412
    noun = plural[:-1]
    updated = (await events(su, w.org, f"{noun}.updated"))[0]
    assert updated["actor_token_id"] == w.token_id and set(json.loads(updated["after"])) == set(change)

    taken = await c.post(f"{w.base}/{plural}", json={**create, "name": create["name"].upper()})
    assert taken.status_code == 409
    assert (await c.delete(r.headers["location"])).status_code == 204
    gone = await c.get(r.headers["location"])
    assert gone.status_code == 404 and gone.json()["detail"].startswith("No such thing in this organization")
    assert (await events(su, w.org, f"{noun}.deleted"))[0]["actor_label"] == "API token “CI”"


async def test_a_workflow_is_checked_like_the_form(api, make_world):
    w, c = api, api.api
    other = await make_world()
    bad = await c.post(f"{w.base}/workflows", json={"name": "x", "agent_id": str(w.agent_free), "definition": {"steps": []}})
    assert bad.status_code == 422 and "steps" in bad.json()["errors"]["definition"]
    foreign = await c.post(f"{w.base}/workflows", json={"name": "x", "agent_id": str(other.agent_free), "definition": DEFINITION})
    assert foreign.status_code == 404  # another org's agent is no agent at all
    assert (await c.post(f"{w.base}/workflows", json={"name": "x", "agent_id": "nope", "definition": DEFINITION})).status_code == 400
    r = await c.patch(f"{w.base}/workflows/{w.workflow}", json={"agent_id": str(other.agent_free)})
    assert r.status_code == 404


async def test_a_connection_s_secret_is_write_only(api, su):
    w, c = api, api.api
    secret = f"xoxb-{unique('s')}"
    r = await c.post(f"{w.base}/connections", json={"name": "Slack", "kind": "slack", "config": {"workspace": "acme"}, "secret": secret})
    assert r.status_code == 201 and r.json()["secret_set"] is True and secret not in r.text
    cid = r.json()["id"]
    stored = await su.fetchval("SELECT secret_ciphertext FROM connection WHERE id = $1", cid)
    assert crypto.decrypt(stored, org_id=w.org.id, connection_id=cid) == secret

    new = f"xoxb-{unique('n')}"
    replaced = await c.put(f"{w.base}/connections/{cid}/secret", json={"secret": new})
    assert replaced.status_code == 200 and new not in replaced.text and replaced.json()["secret_set"]
    stored = await su.fetchval("SELECT secret_ciphertext FROM connection WHERE id = $1", cid)
    assert crypto.decrypt(stored, org_id=w.org.id, connection_id=cid) == new
    for url in (f"{w.base}/connections", f"{w.base}/connections/{cid}"):
        assert new not in (await c.get(url)).text
    assert (await c.put(f"{w.base}/connections/{cid}/secret", json={"secret": ""})).status_code == 400
    assert (await c.delete(f"{w.base}/connections/{cid}/secret")).status_code == 204
    assert (await c.get(f"{w.base}/connections/{cid}")).json()["secret_set"] is False
    log = await su.fetch("SELECT before::text, after::text FROM audit_event WHERE org_id = $1", w.org.id)
    assert not any(secret in str(row) or new in str(row) for row in log)

    leaked = await c.post(f"{w.base}/connections", json={"name": "Leak", "kind": "slack", "config": {"workspace": "a", "token": "xoxb-1"}})
    assert leaked.status_code == 422 and "secret" in leaked.json()["errors"]["config"]
    assert (await c.post(f"{w.base}/connections", json={"name": "K", "kind": "ftp"})).status_code == 400
    kind_change = await c.patch(f"{w.base}/connections/{cid}", json={"kind": "github"})
    assert kind_change.status_code == 200 and kind_change.json()["kind"] == "slack"  # chosen once: ignored


async def test_a_team_s_members_through_the_api(api, make_world, su):
    w, c = api, api.api
    team = f"{w.base}/teams/{w.team}/members"
    listed = (await c.get(team)).json()["items"]
    assert [m["membership_id"] for m in listed] == [str(w.team_member)]
    added = await c.post(team, json={"membership_id": str(w.target)})
    assert added.status_code == 201 and str(w.target) in {m["membership_id"] for m in added.json()["items"]}
    again = await c.post(team, json={"membership_id": str(w.target)})
    assert again.status_code == 422
    other = await make_world()
    assert (await c.post(team, json={"membership_id": str(other.memberships["member"])})).status_code == 404
    assert (await c.delete(f"{team}/{w.target}")).status_code == 204
    assert (await c.delete(f"{team}/{w.target}")).status_code == 404
    assert [e["action"] for e in await events(su, w.org, "team.member_removed")] == ["team.member_removed"]
    assert (await c.get(f"/api/v1/orgs/{w.org.slug}/teams/{other.team}/members")).status_code == 404


async def test_a_body_nested_thousands_deep_is_a_400(api):
    w, c = api, api.api
    deep = '{"name": "x", "zz": ' + "[" * 5000 + "]" * 5000 + "}"
    for path in ("/teams", "/agents", "/workflows"):
        r = await c.post(w.base + path, content=deep, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), (path, r.status_code)


async def test_adding_a_team_member_honours_an_idempotency_key(api, su):
    w, c = api, api.api
    team, key = f"{w.base}/teams/{w.team}/members", {"Idempotency-Key": unique("k")}
    first = await c.post(team, json={"membership_id": str(w.target)}, headers=key)
    again = await c.post(team, json={"membership_id": str(w.target)}, headers=key)
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert len(await events(su, w.org, "team.member_added")) == 1
