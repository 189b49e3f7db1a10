"""Steps a person takes, shared by the journeys."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from tests.factories import unique
from tests.mail_sink import outbox_messages, text_of

PASSWORD = "a-long-browser-password"
VERIFY_LINK = re.compile(r"http://127\.0\.0\.1:\d+(/verify-email/[A-Za-z0-9_.-]+)")


async def mailed_link(outbox: Path, email: str, pattern: re.Pattern = VERIFY_LINK, timeout: float = 15.0) -> str:
    """The path of the newest ``pattern`` link mailed to ``email`` (the live server's outbox)."""
    deadline = time.monotonic() + timeout
    while True:
        for message in reversed(outbox_messages(outbox)):
            if message["To"] == email and (match := pattern.search(text_of(message))):
                return match.group(1)
        assert time.monotonic() < deadline, f"no mail to {email} with {pattern.pattern}"
        await asyncio.sleep(0.1)


async def confirm_email(page, outbox: Path, email: str, password: str = PASSWORD) -> None:
    """Open the confirmation link from the mail, sign in when asked, confirm."""
    await page.goto(await mailed_link(outbox, email))
    await page.get_by_role("link", name="Sign in to confirm").click()
    assert await page.get_by_label("Email").input_value() == email
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Confirm my email address").click()


async def sign_up(page, outbox: Path, name: str = "Grace Hopper", email: str | None = None) -> str:
    """Sign up, confirm the address from the mail, and end on the org list, signed in."""
    email = email or f"{unique('grace')}@example.test"
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_role("heading", name="Check your inbox").wait_for()
    await confirm_email(page, outbox, email)
    await page.wait_for_url("**/orgs")
    assert email in await page.locator(".flash-success").inner_text()
    return email


async def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Sign in from the login page and land on the org list."""
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/orgs")


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
