"""The export-and-delete journey in a real browser, against `portal serve` (whose own background
worker builds the archive): an owner requests an export, watches it until it is ready, downloads
a verifiable archive, hits the rate limit politely, and finally deletes the organization."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from playwright.async_api import expect

from tests.browser.journeys import assert_accessible, sign_in
from tests.factories import PASSWORD, unique

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
async def test_owner_exports_downloads_hits_the_limit_and_deletes_the_org(new_page, make_org, su, tmp_path, javascript):
    org = await make_org(name=f"Export {unique('co')}")
    await su.execute(
        """INSERT INTO audit_event (org_id, action, target_label, after, created_at)
           SELECT $1, 'bulk.event', 'row ' || g, jsonb_build_object('n', g), now() - interval '1 day' + g * interval '1 ms'
           FROM generate_series(1, 20000) g""",
        org.id,
    )
    page = await new_page(java_script_enabled=javascript)
    await sign_in(page, org.owner.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}")
    await page.get_by_role("link", name="Data export").click()
    await page.wait_for_url(f"**/orgs/{org.slug}/exports")
    if javascript:
        await assert_accessible(page)

    await page.get_by_role("button", name="Request export").click()
    await expect(page.locator(".flash-success")).to_contain_text("Export requested")
    row = page.locator("tbody tr").first
    download_link = row.get_by_role("link", name="Download")
    if javascript:  # the row polls itself until the archive is ready
        await expect(download_link).to_be_visible(timeout=60_000)
        await assert_accessible(page)
    else:
        for _ in range(120):
            if await download_link.count():
                break
            await page.wait_for_timeout(500)
            await page.reload()
    await expect(row).to_contain_text("Ready")

    async with page.expect_download() as info:
        await download_link.click()
    download = await info.value
    assert download.suggested_filename.startswith(f"{org.slug}-export-") and download.suggested_filename.endswith("Z.zip")
    path = tmp_path / download.suggested_filename
    await download.save_as(path)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        for entry in manifest["files"]:
            assert hashlib.sha256(zf.read(entry["name"])).hexdigest() == entry["sha256"]
    assert {f["name"]: f["records"] for f in manifest["files"]}["audit_log.jsonl"] == 20001
    assert hashlib.sha256(path.read_bytes()).hexdigest() == await su.fetchval(
        "SELECT sha256 FROM export_job WHERE org_id = $1 AND status = 'done'", org.id
    )

    # two more are allowed this hour; the fourth is refused with a friendly message
    def export_posted(response) -> bool:
        return response.request.method == "POST" and response.url.endswith(f"/orgs/{org.slug}/exports")

    for _ in range(2):  # each click waits for its own answer: the previous flash is still shown
        async with page.expect_response(export_posted):
            await page.get_by_role("button", name="Request export").click()
        await expect(page.locator(".flash-success")).to_contain_text("Export requested")
        if not javascript:
            await page.wait_for_url(f"**/orgs/{org.slug}/exports")
    async with page.expect_response(export_posted):
        await page.get_by_role("button", name="Request export").click()
    await expect(page.locator(".flash-error, .error-page")).to_contain_text("exports per hour")

    # delete the organization from the settings page's danger zone
    await page.goto(f"/orgs/{org.slug}/settings")
    if javascript:
        await assert_accessible(page)
    await page.get_by_label("Type the URL name").fill(org.slug)
    await page.get_by_label("Your password").fill("not my password")
    await page.get_by_role("button", name="Delete this organization").click()
    await expect(page.locator("#delete-password-error")).to_contain_text("isn't right")
    await page.get_by_label("Type the URL name").fill(org.slug)
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Delete this organization").click()
    await page.wait_for_url("**/orgs")
    await expect(page.locator(".flash-success")).to_contain_text("permanently deleted")
    response = await page.goto(f"/orgs/{org.slug}/exports")
    assert response.status == 404
    assert await su.fetchval("SELECT count(*) FROM organization WHERE id = $1", org.id) == 0
