"""Every main page of the demo organization renders, passes axe-core (no serious or critical
violations) and is photographed: into docs/screenshots/ by `make screenshots`
(PORTAL_SCREENSHOTS=docs/screenshots), otherwise into tests/artifacts/screenshots/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.demo import DEMO_OWNER, DEMO_PASSWORD
from tests.browser.journeys import assert_accessible, sign_in

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    ("dashboard", "/orgs/acme", "Acme AI"),
    ("members", "/orgs/acme/members", "Members"),
    ("invites", "/orgs/acme/invites", "Invite"),
    ("agents", "/orgs/acme/agents", "Agents"),
    ("workflows", "/orgs/acme/workflows", "Workflows"),
    ("connections", "/orgs/acme/connections", "Connections"),
    ("teams", "/orgs/acme/teams", "Teams"),
    ("billing", "/orgs/acme/billing", "Billing"),
    ("audit-log", "/orgs/acme/audit", "Audit log"),
    ("access-report", "/orgs/acme/access-report", "Access report"),
    ("exports", "/orgs/acme/exports", "export"),
    ("settings", "/orgs/acme/settings", "settings"),
    ("roles", "/orgs/acme/roles", "Roles"),
    ("api-tokens", "/orgs/acme/api-tokens", "API tokens"),
    ("scim", "/orgs/acme/scim", "SCIM provisioning"),
    ("api-reference", "/docs/api", "Idempotency-Key"),
]


@pytest.fixture(scope="module")
async def demo_loaded(app):
    from portal import demo

    await demo.load_demo()


async def test_main_pages_render_accessibly_and_are_photographed(demo_loaded, new_page):
    out = Path(os.environ.get("PORTAL_SCREENSHOTS") or ROOT / "tests" / "artifacts" / "screenshots")
    if not out.is_absolute():
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    page = await new_page()
    await page.set_viewport_size({"width": 1280, "height": 860})
    await page.goto("/login")
    await page.screenshot(path=str(out / "sign-in.png"))
    await sign_in(page, DEMO_OWNER[0], DEMO_PASSWORD)
    await page.wait_for_url("**/orgs")
    for name, path, text in PAGES:
        response = await page.goto(path)
        assert response.status == 200, (path, response.status)
        assert text.lower() in (await page.locator("main").inner_text()).lower(), path
        await assert_accessible(page)
        await page.screenshot(path=str(out / f"{name}.png"), full_page=False)
