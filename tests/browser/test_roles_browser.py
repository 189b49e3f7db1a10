"""The custom-role journey in a real browser (SPEC §13's "done when"): the owner creates
"Auditor (read-only)" with the permission checklist, gives it to a member with the htmx role
select, the member sees exactly those pages; the owner unticks "Export data" and the member's
next click no longer finds exports. Pages pass axe's serious/critical checks."""

from __future__ import annotations

import pytest

from tests.browser.journeys import assert_accessible, sign_in
from tests.factories import PASSWORD, membership_id

pytestmark = pytest.mark.browser


async def test_owner_creates_a_custom_role_and_the_holder_sees_exactly_it(new_page, make_org, make_member, make_user, su):
    org = await make_org()
    ada = await make_member(org, "member", await make_user(name="Ada Lovelace"))
    ada_id = await membership_id(su, org, ada)
    owner = await new_page()
    await sign_in(owner, org.owner.email, PASSWORD)
    await owner.goto(f"/orgs/{org.slug}/roles")
    await owner.get_by_role("heading", name="Built-in roles").wait_for()
    await assert_accessible(owner)
    await owner.get_by_role("link", name="Create a role").click()
    await owner.get_by_label("Name").fill("Auditor (read-only)")
    await owner.get_by_label("See the audit log").check()
    await owner.get_by_label("Export data").check()
    await assert_accessible(owner)
    await owner.get_by_role("button", name="Create role").click()
    await owner.locator(".flash-success", has_text="Role created.").wait_for()
    role_id = await su.fetchval("SELECT id FROM org_role WHERE org_id = $1", org.id)

    await owner.goto(f"/orgs/{org.slug}/members")
    await owner.get_by_label("Role of Ada Lovelace").select_option(str(role_id))
    await owner.locator(".flash-success", has_text="Ada Lovelace is now Auditor (read-only).").wait_for()
    assert await su.fetchval("SELECT custom_role_id FROM membership WHERE id = $1", ada_id) == role_id

    member = await new_page()
    await sign_in(member, ada.email, PASSWORD)
    await member.goto(f"/orgs/{org.slug}")
    nav = member.get_by_role("navigation", name="Organization")
    for label in ("Dashboard", "Members", "Agents", "Audit log", "Access report", "Data export"):
        await nav.get_by_role("link", name=label, exact=True).wait_for()
    for label in ("Invites", "Roles", "Billing", "Settings"):
        assert await nav.get_by_role("link", name=label, exact=True).count() == 0, label
    await member.locator(".badge", has_text="Auditor (read-only)").first.wait_for()

    await owner.goto(f"/orgs/{org.slug}/roles/{role_id}/edit")
    await owner.get_by_label("Export data").uncheck()
    await owner.get_by_role("button", name="Save changes").click()
    await owner.locator(".flash-success", has_text="Custom role saved.").wait_for()

    await nav.get_by_role("link", name="Audit log", exact=True).click()  # the very next click
    await member.get_by_role("heading", name="Audit log").wait_for()
    assert await nav.get_by_role("link", name="Data export", exact=True).count() == 0
    await member.goto(f"/orgs/{org.slug}/exports")
    await member.get_by_text("doesn't allow").first.wait_for()
