"""The resource layer's generic service, beyond what the pages exercise: keyset paging (the JSON
API's lists), searching literally, and refusing what a declaration does not allow."""

from __future__ import annotations


import pytest

from portal.db import engine as db
from portal.params import encode_cursor
from portal.resources.agents.service import AGENTS
from portal.resources.routes import RESOURCES
from portal.tenancy.scope import TenantScope


async def _agents(su, org_id, names):
    await su.executemany(
        "INSERT INTO agent (org_id, name, model) VALUES ($1, $2, 'gpt-4.1')", [(org_id, name) for name in names]
    )


async def _walk(org_id, *, limit, q="", start=None):
    seen, cursor, pages = [], start, 0
    while True:
        async with db.transaction(org_id=org_id):
            rows, cursor = await AGENTS.keyset(TenantScope(org_id), after=cursor, limit=limit, q=q)
        seen += [r["name"] for r in rows]
        pages += 1
        if cursor is None:
            return seen, pages


async def test_keyset_pages_walk_every_row_once_in_name_order(app, su, make_org):
    org, other = await make_org(), await make_org()
    names = [f"Agent {i:03d}" for i in range(57)] + ["agent 057 (lower case)", "Zeta", "alpha"]
    await _agents(su, org.id, names)
    await _agents(su, other.id, ["Agent from another org"])
    seen, pages = await _walk(org.id, limit=10)
    assert seen == sorted(names, key=str.lower)
    assert pages == 6
    literal, _ = await _walk(org.id, limit=10, q="057 (")
    assert literal == ["agent 057 (lower case)"]
    percent, _ = await _walk(org.id, limit=10, q="%")
    assert percent == []  # "%" is a character to find, not a wildcard


@pytest.mark.parametrize("cursor", ["", "garbage", "W10", encode_cursor("a"), encode_cursor(1, 2), "A" * 5000])
async def test_a_malformed_cursor_starts_from_the_beginning(app, su, make_org, cursor):
    org = await make_org()
    await _agents(su, org.id, ["b", "a", "c"])
    async with db.transaction(org_id=org.id):
        rows, following = await AGENTS.keyset(TenantScope(org.id), after=cursor, limit=2)
    assert [r["name"] for r in rows] == ["a", "b"] and following is not None


async def test_a_cursor_never_reaches_into_another_org(app, su, make_org):
    org, other = await make_org(), await make_org()
    await _agents(su, other.id, ["secret agent"])
    foreign = await su.fetchval("SELECT id FROM agent WHERE org_id = $1", other.id)
    async with db.transaction(org_id=org.id):
        rows, following = await AGENTS.keyset(TenantScope(org.id), after=encode_cursor("a", foreign), limit=5)
    assert rows == [] and following is None


def test_every_declaration_is_complete():
    """Each resource names what the generic pages and service need, and its audit actions exist."""
    for res in RESOURCES:
        assert res.noun and res.plural and res.title and res.title_plural and res.alias
        assert res.fields and res.fields[0].name == "name", res.noun
        for verb in ("created", "updated", "deleted"):
            assert res.action(verb).value == f"{res.noun}.{verb}"
        if res.toggle is not None:
            assert res.toggle.field in {f.name for f in res.fields}
            assert res.toggle.parse(res.toggle.on.posted) == res.toggle.on.value
            assert res.toggle.parse("neither") is None
    assert len({res.plural for res in RESOURCES}) == len(RESOURCES)


async def test_every_page_of_every_resource_links_where_its_routes_are(make_world, client_for):
    """The links a resource's pages draw (``links(item)``: view, edit, save, delete, toggle) are
    its routes: the edit form posts to the update route, and so on. (A dict of links once made
    ``u.update`` the dict's own method in a template, and the edit form posted to nowhere.)"""
    import re

    from portal.roles.service import ROLES

    w = await make_world()
    owner = await client_for(w.users["owner"])
    ids = {"agents": w.agent_free, "workflows": w.workflow, "connections": w.connection, "teams": w.team, "roles": w.role}
    for res in (*RESOURCES, ROLES):
        one = f"/orgs/{w.org.slug}/{res.plural}/{ids[res.plural]}"
        edit = await owner.get(f"{one}/edit")
        assert edit.status_code == 200, res.plural
        actions = re.findall(r'<form method="post" action="([^"]*)"', edit.text)
        assert actions == ["/logout", f"{one}/edit"], (res.plural, actions)  # the header's sign-out, the form
        detail = await owner.get(one)
        hrefs = set(re.findall(r'href="([^"]*)"', detail.text))
        assert {f"{one}/edit", f"{one}/delete"} <= hrefs, res.plural
        confirm = await owner.get(f"{one}/delete")
        assert f'action="{one}/delete"' in confirm.text, res.plural
