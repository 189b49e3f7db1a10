"""The identity provider of the SCIM tests: an org (``make_world``) and a client with its SCIM token."""

from __future__ import annotations

import pytest

from tests.factories import Client, add_api_token, bearer


@pytest.fixture
async def idp(make_world, su, app):
    """The world, with ``idp`` (an httpx client carrying a SCIM token named "Okta", allowed agents too) and ``base``
    (the org's SCIM base path)."""
    w = await make_world()
    _, token = await add_api_token(su, w.org, "scim", name="Okta", manages_agents=True)
    c = Client(app)
    c.http.headers.update(bearer(token))
    w.idp, w.base = c.http, f"/scim/v2/orgs/{w.org.slug}"
    yield w
    await c.aclose()
