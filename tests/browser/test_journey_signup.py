"""Sign up (confirming the address from the mail), create an org, land on its dashboard; switch
between orgs; URL editing is refused."""

from __future__ import annotations

import pytest

from tests.browser.journeys import assert_accessible, create_org, sign_up

pytestmark = pytest.mark.browser


async def test_sign_up_create_org_and_switch(new_page, database):
    page = await new_page()
    await sign_up(page, database.data_dir / "outbox")
    await assert_accessible(page)
    slug = await create_org(page, "Orbital Agents")
    assert await page.get_by_role("heading", name="Orbital Agents").is_visible()
    assert await page.locator(".flash-success").inner_text() == "Organization created. You are its owner."
    await assert_accessible(page)

    second = await create_org(page, "Second Lab")
    # the switcher lists both, and takes us back
    await page.locator(".switcher summary").click()
    await page.get_by_role("menuitem", name="Orbital Agents").click()
    await page.wait_for_url(f"**/orgs/{slug}")
    assert await page.get_by_role("heading", name="Orbital Agents").is_visible()
    assert second != slug


async def test_other_peoples_orgs_are_not_reachable_by_editing_urls(new_page, database):
    alice = await new_page()
    await sign_up(alice, database.data_dir / "outbox", "Alice")
    secret_slug = await create_org(alice, "Secret Project")
    mallory = await new_page()
    await sign_up(mallory, database.data_dir / "outbox", "Mallory")
    response = await mallory.goto(f"/orgs/{secret_slug}")
    assert response.status == 404
    assert await mallory.get_by_role("heading", name="Page not found").is_visible()
    response = await mallory.goto(f"/orgs/{secret_slug}/settings")
    assert response.status == 404
