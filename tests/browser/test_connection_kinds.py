"""The new-connection form in a real browser: choosing a kind shows the config keys it accepts (htmx,
in place), and without JavaScript the same form refuses a credential in the config and then shows
that kind's keys."""

from __future__ import annotations

import json

import pytest

from tests.browser.journeys import assert_accessible, sign_in
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


async def test_choosing_a_kind_shows_its_keys_in_place(new_page, make_org, su):
    org = await make_org()
    page = await new_page()
    await sign_in(page, org.owner.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}/connections/new")
    keys = page.locator("#config-keys")
    await keys.get_by_text("Choose a kind to see the configuration keys it accepts.").wait_for()
    url_before = page.url
    await page.get_by_label("Kind").select_option("postgres")
    await keys.get_by_role("heading", name="PostgreSQL: configuration keys").wait_for()
    assert await keys.locator("td code", has_text="sslmode").count() == 1
    assert page.url == url_before  # swapped in place, the typed fields kept
    await page.get_by_label("Kind").select_option("webhook")
    await keys.get_by_role("heading", name="HTTP webhook: configuration keys").wait_for()
    await assert_accessible(page)

    await page.get_by_label("Name").fill("Hooks")
    await page.get_by_label("Configuration (JSON, not secret)").fill(json.dumps({"url": "https://hooks.example.com", "x-api-key": "k"}))
    await page.get_by_role("button", name="Create connection").click()
    await page.locator("#e-config", has_text="“x-api-key” looks like a credential").wait_for()
    await assert_accessible(page)
    assert await su.fetchval("SELECT count(*) FROM connection WHERE org_id = $1", org.id) == 0


async def test_without_javascript_the_refusal_shows_the_kinds_keys(new_page, make_org, su):
    org = await make_org()
    page = await new_page(java_script_enabled=False)
    await sign_in(page, org.owner.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}/connections/new")
    await page.get_by_label("Name").fill("Warehouse")
    await page.get_by_label("Kind").select_option("postgres")
    await page.get_by_label("Configuration (JSON, not secret)").fill(json.dumps({"host": "db", "database": "dw", "db_password": "p"}))
    await page.get_by_role("button", name="Create connection").click()
    await page.locator("#e-config", has_text="They accept only: host, database, port, user, sslmode.").wait_for()
    await page.locator("#config-keys").get_by_role("heading", name="PostgreSQL: configuration keys").wait_for()
    await page.get_by_label("Configuration (JSON, not secret)").fill(json.dumps({"host": "db", "database": "dw"}))
    await page.get_by_role("button", name="Create connection").click()
    await page.get_by_role("heading", name="Warehouse").wait_for()
    assert await su.fetchval("SELECT count(*) FROM connection WHERE org_id = $1", org.id) == 1
