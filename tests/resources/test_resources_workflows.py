"""Workflows: the definition is validated on save (every malformed case → 422 with a message), the
agent must be one of the org's, enable/disable in place, delete."""

from __future__ import annotations

import json

import pytest

from tests.factories import DEFINITION, add_agent, add_workflow, events, text_of


@pytest.fixture
async def setup(make_org, client_for, su):
    org = await make_org()
    agent = await add_agent(su, org.id, "Writer")
    return org, await client_for(org.owner), f"/orgs/{org.slug}/workflows", agent


def form(agent, definition, **extra):
    raw = definition if isinstance(definition, str) else json.dumps(definition)
    return {"name": "Digest", "agent_id": str(agent), "definition": raw, "enabled": "1", **extra}


async def test_create_view_edit_toggle_delete(setup, su):
    org, c, base, agent = setup
    r = await c.get(f"{base}/new?agent={agent}")
    assert f'<option value="{agent}" selected>' in r.text
    r = await c.post(base, form(agent, DEFINITION, description="Daily digest"))
    assert r.status_code == 303
    url = r.headers["location"]
    page = await c.get(url)
    assert "Digest" in page.text and "Writer" in page.text and "&#34;draft&#34;" in page.text
    row = await su.fetchrow("SELECT * FROM workflow WHERE org_id = $1", org.id)
    assert json.loads(row["definition"]) == DEFINITION and row["enabled"] and row["agent_id"] == agent

    other = await add_agent(su, org.id, "Reviewer")
    changed = {**DEFINITION, "timeout_seconds": 60}
    r = await c.post(f"{url}/edit", form(other, changed, description="Daily digest", enabled=""))
    assert r.status_code == 303
    row = await su.fetchrow("SELECT * FROM workflow WHERE org_id = $1", org.id)
    assert row["agent_id"] == other and not row["enabled"] and json.loads(row["definition"])["timeout_seconds"] == 60
    (ev,) = await events(su, org.id, "workflow.updated")
    assert set(json.loads(ev["after"])) == {"agent_id", "enabled", "definition"}

    r = await c.post(f"{url}/enabled", {"enabled": "true"}, htmx=True)
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr") and "Enabled" in r.text
    assert await su.fetchval("SELECT enabled FROM workflow WHERE org_id = $1", org.id) is True
    r = await c.post(f"{url}/enabled", {"enabled": "maybe"})
    assert r.status_code == 422

    r = await c.post(f"{url}/delete")
    assert r.status_code == 303
    assert await su.fetchval("SELECT count(*) FROM workflow WHERE org_id = $1", org.id) == 0
    assert [e["action"] for e in await events(su, org.id)] == [
        "workflow.created", "workflow.updated", "workflow.updated", "workflow.deleted",
    ]


DEEP = "[" * 3000 + "]" * 3000  # deeper than Python's recursion limit


@pytest.mark.parametrize(
    "definition,message",
    [
        ("", "Enter the workflow definition as JSON."),
        ("{", "This isn't valid JSON"),
        ("{'steps': []}", "This isn't valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ('{"steps": [1,]}', "This isn't valid JSON"),
        ("[1, 2]", "It must be a JSON object"),
        ('"just a string"', "It must be a JSON object"),
        ("null", "It must be a JSON object"),
        ('{"steps": NaN}', "NaN is not allowed"),
        ('{"steps": [{"id": "a", "type": "prompt", "n": 1e999}]}', "too large"),
        ('{"steps": [{"id": "a", "type": "prompt", "n": ' + "9" * 5000 + "}]}", "too large"),
        (DEEP, "nested too deeply"),
        ('{"steps": [{"id": "a", "type": "prompt", "x": ' + "[" * 30 + "]" * 30 + "}]}", "nested too deeply"),
        ('{"steps": [{"id": "a", "type": "prompt", "x": "\\u0000"}]}', "\\u0000"),
        ('{"steps": [{"id": "a", "type": "prompt", "x": "\\ud800"}]}', "invalid Unicode"),
        ('{"steps": [], "x": 1}', "Unknown key “x”"),
        ("{}", "add at least one step"),
        ('{"steps": {}}', "add at least one step"),
        ('{"steps": [1]}', "steps[0]: each step is an object"),
        ('{"steps": [{"id": "A B", "type": "prompt"}]}', "steps[0].id"),
        ('{"steps": [{"id": "a", "type": "teleport"}]}', "steps[0].type: must be one of prompt, tool"),
        ('{"steps": [{"id": "a", "type": "tool"}, {"id": "a", "type": "tool"}]}', "step ids must be unique"),
        ('{"steps": [{"id": "a", "type": "tool", "next": "b"}]}', "steps[0].next: must be the id of another step"),
        ('{"steps": [{"id": "a", "type": "tool", "next": "a"}]}', "can't lead to itself"),
        ('{"trigger": "daily", "steps": [{"id": "a", "type": "tool"}]}', "trigger: must be an object"),
        ('{"trigger": {"type": "cron"}, "steps": [{"id": "a", "type": "tool"}]}', "trigger.type: must be one of manual"),
        ('{"trigger": {"type": "schedule", "cron": "daily"}, "steps": [{"id": "a", "type": "tool"}]}', "five-field cron"),
        ('{"trigger": {"type": "event"}, "steps": [{"id": "a", "type": "tool"}]}', "needs the event name"),
        ('{"inputs": {"Bad Name": "string"}, "steps": [{"id": "a", "type": "tool"}]}', "inputs.Bad Name"),
        ('{"inputs": {"n": "float"}, "steps": [{"id": "a", "type": "tool"}]}', "inputs.n: the type must be one of"),
        ('{"timeout_seconds": 0, "steps": [{"id": "a", "type": "tool"}]}', "timeout_seconds"),
        ('{"timeout_seconds": true, "steps": [{"id": "a", "type": "tool"}]}', "timeout_seconds"),
        ('{"steps": [' + ",".join(f'{{"id": "s{i}", "type": "tool"}}' for i in range(51)) + "]}", "at most 50 steps"),
        ('{"steps": [{"id": "a", "type": "prompt", "prompt": "' + "x" * 9000 + '"}]}', "too large: at most 8,000 characters"),
    ],
)
async def test_malformed_definitions_are_422_with_a_message(setup, su, definition, message):
    org, c, base, agent = setup
    r = await c.post(base, form(agent, definition))
    assert r.status_code == 422, r.status_code
    assert 'id="e-definition"' in r.text
    shown = text_of(r).replace("&#39;", "'").replace("&#34;", '"')
    assert message in shown, shown[-1500:]
    assert await su.fetchval("SELECT count(*) FROM workflow WHERE org_id = $1", org.id) == 0
    assert await events(su, org.id) == []


async def test_every_mistake_is_reported_at_once(setup):
    org, c, base, agent = setup
    r = await c.post(base, {"name": "", "agent_id": "", "definition": "{"})
    assert r.status_code == 422
    for field in ("name", "agent_id", "definition"):
        assert f'id="e-{field}"' in r.text, field
    assert "{" in r.text  # the typed definition is kept for correcting


async def test_the_agent_must_belong_to_the_org(setup, make_org, su, snapshot):
    org, c, base, agent = setup
    other = await make_org()
    foreign = await add_agent(su, other.id, "Not yours")
    before = await snapshot(org.id)
    for agent_id in (str(foreign), "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        r = await c.post(base, form(agent_id, DEFINITION))
        assert r.status_code == 404, agent_id
    assert await snapshot(org.id) == before


async def test_the_form_explains_when_there_is_no_agent(make_org, client_for):
    org = await make_org()
    c = await client_for(org.owner)
    r = await c.get(f"/orgs/{org.slug}/workflows/new")
    assert "Create an agent first" in r.text
    r = await c.get(f"/orgs/{org.slug}/workflows")
    assert "No workflows yet" in r.text


async def test_a_duplicate_name_is_a_field_error(setup, su):
    org, c, base, agent = setup
    await add_workflow(su, org.id, agent, "Nightly Report")
    r = await c.post(base, form(agent, DEFINITION, name="NIGHTLY report"))
    assert r.status_code == 422 and "already has this name" in r.text
    assert 'id="e-name"' in r.text


async def test_list_shows_agent_trigger_and_steps(setup, su):
    org, c, base, agent = setup
    await c.post(base, form(agent, {"trigger": {"type": "schedule", "cron": "0 9 * * 1-5"}, "steps": DEFINITION["steps"] * 1}))
    r = await c.get(base)
    assert "Writer" in r.text and "Schedule" in r.text
