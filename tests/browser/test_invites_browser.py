"""The invite journey in a real browser: an owner invites a colleague, the mail lands in the
outbox, the colleague opens the link in a second browser profile, creates an account from the
landing page, confirms the address from the second mail, accepts, and lands in the org with the
invited role. With and without JavaScript."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import expect

from tests.browser.journeys import assert_accessible, mailed_link, sign_in
from tests.factories import PASSWORD, unique
from tests.mail_sink import outbox_messages, text_of

pytestmark = pytest.mark.browser


def link_for(database, email: str) -> str:
    for message in reversed(outbox_messages(database.data_dir / "outbox")):
        if message["To"] == email:
            return re.search(r"http://127\.0\.0\.1:\d+(/invites/[A-Za-z0-9_-]{43})", text_of(message)).group(1)
    raise AssertionError(f"no invite mail to {email}")


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
async def test_invite_a_colleague_who_signs_up_from_the_landing_page(new_page, database, make_org, javascript):
    org = await make_org(name=f"Acme {unique('lab')}")
    owner = await new_page(java_script_enabled=javascript)
    await sign_in(owner, org.owner.email, PASSWORD)
    await owner.goto(f"/orgs/{org.slug}/invites")
    if javascript:
        await assert_accessible(owner)
    colleague_email = f"{unique('colleague')}@example.test"
    await owner.get_by_label("Email address").fill(colleague_email)
    await owner.get_by_label("Role").select_option("billing_admin")
    await owner.get_by_role("button", name="Send invite").click()
    row = owner.locator("tr", has_text=colleague_email)
    await row.wait_for()
    assert "Invite created for" in await owner.locator(".flash-success").inner_text()
    if javascript:  # the row polls until its mail is out
        await expect(row).not_to_contain_text("Sending…")
    else:  # without JavaScript, reload as a person would until the worker has sent it
        for _ in range(40):
            await owner.reload()
            if "Sending…" not in await row.inner_text():
                break
            await asyncio.sleep(0.25)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", await row.locator("td").nth(3).inner_text())

    path = link_for(database, colleague_email)
    colleague = await new_page(java_script_enabled=javascript)  # a second browser profile
    response = await colleague.goto(path)
    assert response.status == 200 and response.headers["referrer-policy"] == "no-referrer"
    assert await colleague.get_by_role("heading", name=f"Join {org.name}").is_visible()
    if javascript:
        await assert_accessible(colleague)
    await colleague.get_by_role("link", name="Create account").last.click()
    email_field = colleague.get_by_label("Email")
    assert await email_field.input_value() == colleague_email and await email_field.get_attribute("readonly") is not None
    await colleague.get_by_label("Your name").fill("Colin Colleague")
    await colleague.get_by_label("Password").fill("a-long-browser-password")
    await colleague.get_by_role("button", name="Create account").click()
    await colleague.get_by_role("heading", name="Check your inbox").wait_for()
    if javascript:
        await assert_accessible(colleague)

    # the address is confirmed from the mail (sign in when asked), which leads back to the invite
    await colleague.goto(await mailed_link(database.data_dir / "outbox", colleague_email))
    if javascript:
        await assert_accessible(colleague)
    await colleague.get_by_role("link", name="Sign in to confirm").click()
    await colleague.get_by_label("Password").fill("a-long-browser-password")
    await colleague.get_by_role("button", name="Sign in").click()
    await colleague.get_by_role("button", name="Confirm my email address").click()
    await colleague.wait_for_url(f"**{path}")
    assert "is confirmed as your email address" in await colleague.locator(".flash-success").inner_text()
    await colleague.get_by_role("button", name=f"Accept and join {org.name}").click()
    await colleague.wait_for_url(f"**/orgs/{org.slug}")
    assert await colleague.locator(".flash-success").inner_text() == f"Welcome to {org.name}! You joined as Billing admin."
    assert "Billing admin" in await colleague.locator(".page-head").inner_text()

    # the used link is dead, politely
    response = await colleague.goto(path)
    assert response.status == 404
    assert await colleague.get_by_role("heading", name="This invite is no longer valid").is_visible()


async def test_owner_resends_and_revokes_in_place(new_page, database, make_org):
    org = await make_org()
    owner = await new_page()
    await sign_in(owner, org.owner.email, PASSWORD)
    await owner.goto(f"/orgs/{org.slug}/invites")
    email = f"{unique('pat')}@example.test"
    await owner.get_by_label("Email address").fill(email)
    await owner.get_by_role("button", name="Send invite").click()
    row = owner.locator("tr", has_text=email)
    await row.wait_for()
    await expect(row).not_to_contain_text("Sending…")
    first = link_for(database, email)

    await row.get_by_role("button", name="Resend").click()
    await owner.locator(".flash-success", has_text="previous link no longer works").wait_for()
    await expect(owner.locator("tr", has_text=email)).not_to_contain_text("Sending…")
    assert owner.url.endswith(f"/orgs/{org.slug}/invites")  # swapped in place, no navigation
    second = link_for(database, email)
    assert second != first

    owner.once("dialog", lambda dialog: dialog.accept())
    await owner.locator("tr", has_text=email).get_by_role("button", name="Revoke").click()
    await owner.locator("tr", has_text=email).wait_for(state="detached")
    assert "was revoked" in await owner.locator(".flash-success").inner_text()

    visitor = await new_page()
    for path in (first, second):
        assert (await visitor.goto(path)).status == 404

