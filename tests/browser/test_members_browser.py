"""Real-browser journeys for the membership lifecycle, with and without JavaScript: an owner
manages members (htmx role select, confirm-and-remove, live search), a member leaves, the owner
hands the org over. Pages pass axe's serious/critical checks (axe needs JavaScript, so it runs in
the JavaScript journeys)."""

from __future__ import annotations

import re

import pytest

from tests.browser.journeys import assert_accessible, sign_in
from tests.factories import PASSWORD, membership_id

pytestmark = pytest.mark.browser


async def test_owner_manages_members_with_htmx(new_page, make_org, make_member, make_user, su):
    org = await make_org()
    ada = await make_member(org, "member", await make_user(name="Ada Lovelace"))
    alan = await make_member(org, "billing_admin", await make_user(name="Alan Turing"))
    ada_id, alan_id = await membership_id(su, org, ada), await membership_id(su, org, alan)
    page = await new_page()
    await sign_in(page, org.owner.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}/members")
    await assert_accessible(page)
    assert not await page.get_by_role("button", name="Change role").first.is_visible()  # htmx replaces it

    # role change: pick a role, the row swaps in place
    await page.get_by_label("Role of Ada Lovelace").select_option("compliance_officer")
    await page.locator(".flash-success", has_text="Ada Lovelace is now Compliance officer.").wait_for()
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", ada_id) == "compliance_officer"
    assert await page.get_by_label("Role of Ada Lovelace").input_value() == "compliance_officer"
    assert page.url.endswith(f"/orgs/{org.slug}/members")

    # removal: confirm, the row disappears
    messages = []

    async def accept(dialog):
        messages.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await page.get_by_role("link", name="Remove Alan Turing").click()
    await page.locator(f"#member-{alan_id}").wait_for(state="detached")
    await page.locator(".flash-success", has_text="Alan Turing was removed").wait_for()
    assert "Remove Alan Turing" in messages[0]
    assert await su.fetchval("SELECT count(*) FROM membership WHERE id = $1", alan_id) == 0

    # live search narrows the list and keeps the URL in step
    await page.get_by_label("Search members").fill("lovelace")
    await page.wait_for_url(re.compile(r".*q=lovelace"))
    await page.locator("#member-list", has_text="1 member matches").wait_for()
    assert await page.locator("tbody tr").count() == 1
    await assert_accessible(page)
    # the no-JavaScript confirmation page
    await page.goto(f"/orgs/{org.slug}/members/{ada_id}/remove")
    await page.get_by_role("heading", name="Remove Ada Lovelace?").wait_for()
    await assert_accessible(page)


async def test_owner_manages_members_without_javascript(new_page, make_org, make_member, make_user, su):
    print("start", flush=True)
    org = await make_org()
    grace = await make_member(org, "member", await make_user(name="Grace Hopper"))
    linus = await make_member(org, "member", await make_user(name="Linus Torvalds"))
    grace_id, linus_id = await membership_id(su, org, grace), await membership_id(su, org, linus)
    page = await new_page(java_script_enabled=False)
    await sign_in(page, org.owner.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}/members")

    row = page.locator(f"#member-{grace_id}")
    await row.get_by_label("Role of Grace Hopper").select_option("billing_admin")
    await row.get_by_role("button", name="Change role").click()
    await page.wait_for_url(f"**/orgs/{org.slug}/members")
    assert await page.locator(".flash-success").inner_text() == "Grace Hopper is now Billing admin."
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", grace_id) == "billing_admin"

    await page.get_by_role("link", name="Remove Linus Torvalds").click()
    await page.get_by_role("heading", name="Remove Linus Torvalds?").wait_for()
    await page.get_by_role("button", name="Remove member").click()
    await page.wait_for_url(f"**/orgs/{org.slug}/members")
    assert "Linus Torvalds was removed" in await page.locator(".flash-success").inner_text()
    assert await su.fetchval("SELECT count(*) FROM membership WHERE id = $1", linus_id) == 0


async def test_member_leaves_and_owner_transfers(new_page, make_org, make_member, make_user, su):
    org = await make_org()
    leaver = await make_member(org, "compliance_officer", await make_user(name="Leaving Person"))
    heir = await make_member(org, "member", await make_user(name="Heir Apparent"))

    page = await new_page()
    await sign_in(page, leaver.email, PASSWORD)
    await page.goto(f"/orgs/{org.slug}")
    await page.get_by_role("link", name="Leave organization").click()
    await assert_accessible(page)
    await page.get_by_role("button", name="Leave organization").click()
    await page.wait_for_url("**/orgs")
    assert await page.locator(".flash-success").inner_text() == f"You left {org.name}."

    owner = await new_page()
    await sign_in(owner, org.owner.email, PASSWORD)
    response = await owner.goto(f"/orgs/{org.slug}/leave")
    assert response.status == 409
    assert await owner.get_by_text("You are the owner: transfer ownership before leaving.").is_visible()
    await owner.goto(f"/orgs/{org.slug}/settings")
    await owner.get_by_role("link", name="Transfer ownership…").click()
    await owner.wait_for_url(f"**/orgs/{org.slug}/transfer")
    await assert_accessible(owner)
    heir_id = await membership_id(su, org, heir)
    await owner.get_by_label("Member who becomes the owner").select_option(str(heir_id))
    await owner.get_by_label("Your password").fill("not the password")
    await owner.get_by_role("button", name="Transfer ownership").click()
    await owner.get_by_text("That password isn't right.").wait_for()
    await owner.get_by_label("Your password").fill(PASSWORD)
    await owner.get_by_role("button", name="Transfer ownership").click()
    await owner.wait_for_url(f"**/orgs/{org.slug}")
    assert "Heir Apparent is now the owner" in await owner.locator(".flash-success").inner_text()
    assert await su.fetchval("SELECT role FROM membership WHERE id = $1", heir_id) == "owner"
