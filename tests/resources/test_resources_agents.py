"""Agents: create, list with search and paging, edit, pause/resume (htmx and plain), delete."""

from __future__ import annotations

import pytest

from tests.factories import add_agent, add_workflow, events, text_of


@pytest.fixture
async def owner_org(make_org, client_for):
    org = await make_org()
    return org, await client_for(org.owner), f"/orgs/{org.slug}/agents"


async def test_a_new_org_is_told_what_to_do_first(owner_org, make_member, client_for):
    org, c, base = owner_org
    r = await c.get(base)
    assert r.status_code == 200
    assert "No agents yet" in r.text and "Create your first agent" in r.text
    viewer = await client_for(await make_member(org, "compliance_officer"))
    r = await viewer.get(base)
    assert "No agents yet" in r.text and "Create your first agent" not in r.text and f'href="{base}/new"' not in r.text


async def test_owner_creates_edits_and_deletes_an_agent_with_audit(owner_org, su):
    org, c, base = owner_org
    r = await c.post(base, {"name": "  Support triage ", "model": "claude-sonnet-4-5", "description": "Sorts tickets\r\nby urgency"})
    assert r.status_code == 303
    agent_url = r.headers["location"]
    agent_id = agent_url.rsplit("/", 1)[1]
    page = await c.get(agent_url)
    assert page.status_code == 200 and "Agent created." in page.text and "Support triage" in page.text
    row = await su.fetchrow("SELECT * FROM agent WHERE id = $1", __import__("uuid").UUID(agent_id))
    assert row["org_id"] == org.id and row["name"] == "Support triage" and row["description"] == "Sorts tickets\nby urgency"
    assert row["status"] == "active" and row["created_by"] == org.owner.id

    r = await c.post(f"{agent_url}/edit", {"name": "Support triage", "model": "claude-haiku-4-5", "description": "Sorts tickets\nby urgency"})
    assert r.status_code == 303 and r.headers["location"] == agent_url
    (updated,) = await events(su, org.id, "agent.updated")
    assert '"model": "claude-sonnet-4-5"' in updated["before"] and '"model": "claude-haiku-4-5"' in updated["after"]
    assert "name" not in updated["after"]  # only what changed

    r = await c.post(f"{agent_url}/edit", {"name": "Support triage", "model": "claude-haiku-4-5", "description": "Sorts tickets\nby urgency"})
    assert r.status_code == 303
    assert "No changes to save." in (await c.get(agent_url)).text
    assert len(await events(su, org.id, "agent.updated")) == 1

    confirm = await c.get(f"{agent_url}/delete")
    assert confirm.status_code == 200 and "Delete the agent “Support triage”?" in text_of(confirm)
    r = await c.post(f"{agent_url}/delete")
    assert r.status_code == 303 and r.headers["location"] == base
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1", org.id) == 0
    assert [e["action"] for e in await events(su, org.id)] == ["agent.created", "agent.updated", "agent.deleted"]
    assert (await c.get(agent_url)).status_code == 404


@pytest.mark.parametrize(
    "form,field,message",
    [
        ({"name": "", "model": "gpt-4.1"}, "name", "Enter the agent's name."),
        ({"name": "x" * 101, "model": "gpt-4.1"}, "name", "at most 100 characters"),
        ({"name": "Bad\x07name", "model": "gpt-4.1"}, "name", "control characters"),
        ({"name": "Ok", "model": ""}, "model", "Enter the model."),
        ({"name": "Ok", "model": "gpt 4 turbo"}, "model", "no spaces"),
        ({"name": "Ok", "model": "m" * 101}, "model", "at most 100 characters"),
        ({"name": "Ok", "model": "gpt-4.1", "description": "d" * 2001}, "description", "at most 2,000 characters"),
        ({"name": "Ok", "model": "gpt-4.1", "status": "deleted"}, "status", "Choose active or paused."),
        ({"name": "Ok", "model": "gpt-4.1", "description": "x" * 50_000}, "description", "at most 2,000 characters"),
    ],
)
async def test_invalid_agent_forms_rerender_with_inline_errors(owner_org, su, form, field, message):
    org, c, base = owner_org
    r = await c.post(base, form)
    assert r.status_code == 422
    assert f'id="e-{field}"' in r.text and message in text_of(r).replace("&#39;", "'")
    assert await su.fetchval("SELECT count(*) FROM agent WHERE org_id = $1", org.id) == 0


async def test_names_are_unique_per_org_ignoring_case(owner_org, su, make_org):
    org, c, base = owner_org
    await add_agent(su, org.id, "Support Bot")
    other = await make_org()
    await add_agent(su, other.id, "Ops Bot")
    r = await c.post(base, {"name": "support bot", "model": "gpt-4.1"})
    assert r.status_code == 422 and "already has this name" in r.text
    assert (await c.post(base, {"name": "Ops Bot", "model": "gpt-4.1"})).status_code == 303  # another org's name is free
    agent = await add_agent(su, org.id, "Third")
    r = await c.post(f"{base}/{agent}/edit", {"name": "SUPPORT BOT", "model": "gpt-4.1"})
    assert r.status_code == 422 and "already has this name" in r.text
    # the refused statement rolled back to a savepoint: the page still rendered, nothing changed
    assert await su.fetchval("SELECT name FROM agent WHERE id = $1", agent) == "Third"


async def test_search_and_pagination(owner_org, su):
    org, c, base = owner_org
    for i in range(60):
        await add_agent(su, org.id, f"Agent {i:02d}")
    await su.execute("UPDATE agent SET model = 'special-model' WHERE org_id = $1 AND name = 'Agent 07'", org.id)
    r = await c.get(base)
    assert "Agent 00" in r.text and "Agent 24" in r.text and "Agent 25" not in r.text
    assert "1–25 of 60" in r.text and "page=2" in r.text
    r = await c.get(f"{base}?page=3")
    assert "Agent 50" in r.text and "Agent 59" in r.text and "Agent 49" not in r.text
    r = await c.get(f"{base}?page=99")  # past the end: the last page
    assert "Agent 59" in r.text
    r = await c.get(f"{base}?q=special")
    assert "Agent 07" in r.text and "Agent 08" not in r.text
    r = await c.get(f"{base}?q=nothing-matches")
    assert "No agents match" in text_of(r)
    for q in ("%", "_", "\\", "' OR 1=1 --", "x" * 5000, "ü\x00"):
        r = await c.get(base, params={"q": q, "page": "-1"})
        assert r.status_code == 200
    assert "No agents match" in text_of(await c.get(base, params={"q": "%"}))  # % is literal
    for page in ("abc", "1e9", "", "99999999999999999999"):
        assert (await c.get(base, params={"page": page})).status_code == 200


async def test_htmx_search_returns_only_the_results(owner_org, su):
    org, c, base = owner_org
    await add_agent(su, org.id, "Needle")
    r = await c.get(f"{base}?q=need", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Needle" in r.text
    assert "<html" not in r.text and "Search agents" not in r.text
    assert r.headers["vary"] == "HX-Request"
    # a history restore needs the whole page
    r = await c.get(f"{base}?q=need", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in r.text


async def test_status_toggle_with_htmx_swaps_the_row(owner_org, su):
    org, c, base = owner_org
    agent = await add_agent(su, org.id, "Toggler")
    r = await c.post(f"{base}/{agent}/status", {"status": "paused"}, htmx=True)
    assert r.status_code == 200
    assert r.text.lstrip().startswith(f'<tr id="agent-{agent}"') and "Resume" in r.text and "Paused" in r.text
    assert 'hx-swap-oob="true"' in r.text and "is paused" in r.text
    assert await su.fetchval("SELECT status FROM agent WHERE id = $1", agent) == "paused"
    (event,) = await events(su, org.id, "agent.updated")
    assert '"paused"' in event["after"] and '"active"' in event["before"]


async def test_status_toggle_without_javascript_returns_to_the_page(owner_org, su):
    org, c, base = owner_org
    agent = await add_agent(su, org.id, "Plain")
    r = await c.post(f"{base}/{agent}/status", {"status": "paused", "next": base})
    assert r.status_code == 303 and r.headers["location"] == base
    r = await c.post(f"{base}/{agent}/status", {"status": "active", "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == f"{base}/{agent}"
    r = await c.post(f"{base}/{agent}/status", {"status": "exploded"})
    assert r.status_code == 422
    assert await su.fetchval("SELECT status FROM agent WHERE id = $1", agent) == "active"


async def test_an_agent_running_workflows_cannot_be_deleted(owner_org, su):
    org, c, base = owner_org
    agent = await add_agent(su, org.id, "Busy")
    await add_workflow(su, org.id, agent, "Nightly")
    confirm = await c.get(f"{base}/{agent}/delete")
    assert "runs 1 workflow" in confirm.text and 'class="danger"' not in confirm.text
    r = await c.post(f"{base}/{agent}/delete")
    assert r.status_code == 409 and "runs 1 workflow" in r.text
    r = await c.post(f"{base}/{agent}/delete", {"from": "list"}, htmx=True)
    assert r.status_code == 409 and r.headers["HX-Retarget"] == "#flash"
    assert await su.fetchval("SELECT count(*) FROM agent WHERE id = $1", agent) == 1
    assert await events(su, org.id, "agent.deleted") == []


async def test_htmx_delete_from_the_list_removes_the_row(owner_org, su):
    org, c, base = owner_org
    agent = await add_agent(su, org.id, "Short-lived")
    r = await c.post(f"{base}/{agent}/delete", {"from": "list"}, htmx=True)
    assert r.status_code == 200 and "<tr" not in r.text and "deleted" in r.text and 'hx-swap-oob="true"' in r.text
    agent = await add_agent(su, org.id, "From detail page")
    r = await c.post(f"{base}/{agent}/delete", htmx=True)
    assert r.status_code == 200 and r.headers["HX-Redirect"] == base


async def test_list_and_detail_pages_carry_htmx_and_no_js_controls(owner_org, su):
    org, c, base = owner_org
    agent = await add_agent(su, org.id, "Controls")
    r = await c.get(base)
    assert f'hx-post="{base}/{agent}/status"' in r.text and f'action="{base}/{agent}/status"' in r.text
    assert f'href="{base}/{agent}/delete"' in r.text and "hx-confirm=" in r.text
    assert "<script" not in r.text.split("</head>", 1)[1]  # no inline script (CSP script-src 'self')
    detail = await c.get(f"{base}/{agent}")
    assert f'href="{base}/{agent}/edit"' in detail.text
    form = await c.get(f"{base}/{agent}/edit")
    for name in ("name", "model", "description", "status"):
        assert f'<label for="f-{name}">' in form.text, name
