"""Real-browser journeys: the portal served by uvicorn on a free loopback port, on the suite's
PostgreSQL, with Playwright driving the machine's Chromium (no downloaded browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.servers import portal_server

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def live_server(database):
    """`portal serve` in a subprocess, as in production (minus TLS).

    One per test module, not per session: the server runs the export worker, which must not be
    alive (claiming other tests' export jobs) while the rest of the suite drives workers itself.
    """
    with portal_server(database, "server.log") as url:
        yield url


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (Debian: apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def new_page(browser, live_server, request):
    """Pages in fresh contexts (separate cookie jars = separate people); screenshots on failure."""
    contexts = []

    async def make(java_script_enabled: bool = True):
        ctx = await browser.new_context(base_url=live_server, java_script_enabled=java_script_enabled)
        contexts.append(ctx)
        page = await ctx.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for i, ctx in enumerate(contexts):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for j, page in enumerate(ctx.pages):
                await page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}-{j}.png"), full_page=True)
        await ctx.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
