"""Steps a person takes, shared by the journeys."""

from __future__ import annotations

from tests.conftest import unique

PASSWORD = "a-long-browser-password"


async def sign_up(page, name: str = "Grace Hopper", email: str | None = None) -> str:
    email = email or f"{unique('grace')}@example.test"
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/orgs")
    return email


async def sign_in(page, email: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def create_org(page, name: str) -> str:
    await page.goto("/orgs")
    await page.get_by_label("Organization name").fill(name)
    await page.get_by_role("button", name="Create organization").click()
    await page.wait_for_url("**/orgs/*")
    return page.url.rsplit("/", 1)[-1]


async def assert_accessible(page) -> None:
    """axe-core in the page: no serious or critical violations."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert bad == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in bad]
