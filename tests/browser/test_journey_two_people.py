"""Two people, two browser profiles: what one does shows up on the other's very next click.

The owner promotes a member in place (htmx, no reload) and the member's next click shows the new
sidebar; ownership moves and the old owner sees the new limits; the new owner deletes the org by
typing its slug and the other person's open tab gets the 404 page on its next click."""

from __future__ import annotations

import pytest

from tests.browser.journeys import assert_accessible, sign_in
from tests.factories import PASSWORD, membership_id

pytestmark = pytest.mark.browser


async def test_changes_reach_the_other_person_on_their_next_click(new_page, make_org, make_member, make_user, su):
    org = await make_org()
    kim = await make_member(org, "member", await make_user(name="Kim Member"))
    kim_mid = await membership_id(su, org, kim)

    owner = await new_page()
    await sign_in(owner, org.owner.email, PASSWORD)
    member = await new_page()
    await sign_in(member, kim.email, PASSWORD)
    await member.goto(f"/orgs/{org.slug}")
    assert await member.get_by_role("link", name="Billing", exact=True).count() == 0

    # the owner makes Kim billing admin, in place
    await owner.goto(f"/orgs/{org.slug}/members")
    url_before = owner.url
    await owner.get_by_label("Role of Kim Member").select_option("billing_admin")
    await owner.locator(".flash-success", has_text="Kim Member is now Billing admin.").wait_for()
    assert owner.url == url_before  # no navigation: the row was swapped

    # Kim's very next click shows it
    await member.get_by_role("link", name="Members", exact=True).click()
    await member.get_by_role("link", name="Billing", exact=True).wait_for()
    await member.get_by_role("link", name="Billing", exact=True).click()
    await member.get_by_role("heading", name="Billing", exact=True).wait_for()
    await assert_accessible(member)

    # ownership moves to Kim; the old owner sees a member's limits at once
    await owner.goto(f"/orgs/{org.slug}/transfer")
    await owner.get_by_label("Member who becomes the owner").select_option(str(kim_mid))
    await owner.get_by_label("Your password").fill(PASSWORD)
    await owner.get_by_role("button", name="Transfer ownership").click()
    await owner.wait_for_url(f"**/orgs/{org.slug}")
    assert await owner.get_by_role("link", name="Settings", exact=True).count() == 0
    response = await owner.goto(f"/orgs/{org.slug}/settings")
    assert response.status == 403
    await owner.goto(f"/orgs/{org.slug}")  # and stays on the dashboard, tab open

    # Kim, now the owner, deletes the org by typing its slug
    await member.goto(f"/orgs/{org.slug}/settings")
    await member.get_by_label("Type the URL name").fill(org.slug)
    await member.get_by_label("Your password").fill(PASSWORD)
    await member.get_by_role("button", name="Delete this organization").click()
    await member.wait_for_url("**/orgs")

    # the former owner's tab is still on the dashboard; the next click gets the 404 page
    async with owner.expect_response(lambda r: r.url.endswith(f"/orgs/{org.slug}/members")) as info:
        await owner.get_by_role("link", name="Members", exact=True).click()
    assert (await info.value).status == 404
    await owner.get_by_role("heading", name="Page not found").wait_for()
