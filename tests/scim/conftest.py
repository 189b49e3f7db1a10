"""The identity provider of the SCIM tests: an org (``make_world``) and a client with its SCIM token."""

from __future__ import annotations

import pytest

from tests.factories import Client, add_api_token, bearer


async def _idp(make_world, su, app, *, manages_agents: bool):
    w = await make_world()
    _, token = await add_api_token(su, w.org, "scim", name="Okta", manages_agents=manages_agents)
    c = Client(app)
    c.http.headers.update(bearer(token))
    w.idp, w.base = c.http, f"/scim/v2/orgs/{w.org.slug}"
    return w, c


@pytest.fixture
async def idp(make_world, su, app):
    """The world, with ``idp`` (an httpx client carrying a SCIM token named "Okta", for people and
    teams: the default, and what every token made before "Agents too" is) and ``base`` (the org's
    SCIM base path)."""
    w, c = await _idp(make_world, su, app, manages_agents=False)
    yield w
    await c.aclose()


@pytest.fixture
async def agents_idp(make_world, su, app):
    """``idp``, with a token whose owner ticked "Agents too"."""
    w, c = await _idp(make_world, su, app, manages_agents=True)
    yield w
    await c.aclose()
