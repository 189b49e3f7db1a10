"""Invites end to end: a real SMTP server and the outbox deliver the link; the landing page and
acceptance; the owner's list, resend and revoke; who may manage invites; seats and rate limits."""

from __future__ import annotations

import html
import logging
import re
from urllib.parse import parse_qs, urlsplit

from portal.mail import queue as mail_queue
from tests.factories import PASSWORD, Client, confirm, mail_to, send_invite, sign_up, text_of, verify_path
from tests.mail_sink import html_of, link_in, outbox_messages, text_of as mail_text


def href(page, label: str) -> str:
    """The link labelled ``label`` inside the page's main content (not the top bar)."""
    main = page.text.split('<main id="main"', 1)[1]
    match = re.search(rf'href="([^"]+)"[^>]*>{re.escape(label)}<', main)
    assert match, label
    return html.unescape(match.group(1))


def assert_private_link_headers(r):
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


async def test_invite_over_real_smtp_then_landing_new_account_and_accept(app, smtp_sink, make_org, client_for, su):
    org = await make_org(name="Globex Research")
    owner = await client_for(org.owner)
    r = await owner.post(f"/orgs/{org.slug}/invites", {"email": "New.Colleague@Example.test", "role": "compliance_officer"})
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}/invites"
    await mail_queue.drain()

    [message] = await smtp_sink.wait_for(1)
    assert smtp_sink.envelopes[0][1] == ["new.colleague@example.test"]
    assert message["To"] == "new.colleague@example.test"
    assert org.owner.name in message["Subject"] and "Globex Research" in message["Subject"]
    for part in (mail_text(message), html_of(message)):
        for fact in (org.owner.name, org.owner.email, "new.colleague@example.test", "Globex Research", "Compliance officer", "expires on", "7 days"):
            assert fact in part, fact
    path = link_in(message)

    listing = await owner.get(f"/orgs/{org.slug}/invites")
    row = text_of(listing)
    assert "new.colleague@example.test" in row and "Compliance officer" in row and org.owner.name in row
    assert "Not delivered" not in row and "Sending" not in row

    visitor = Client(app)
    landing = await visitor.get(path)
    assert landing.status_code == 200
    assert_private_link_headers(landing)
    body = text_of(landing)
    for fact in ("Join Globex Research", org.owner.name, "Compliance officer", "new.colleague@example.test", "Expires", "in 7 days"):
        assert fact in body, fact
    assert "Accept" not in body  # anonymous: create an account or sign in first

    signup_url = href(landing, "Create account")
    query = parse_qs(urlsplit(signup_url).query)
    assert query == {"email": ["new.colleague@example.test"], "next": [path]}
    assert parse_qs(urlsplit(href(landing, "Sign in")).query) == query
    signup_page = await visitor.get(signup_url)
    assert re.search(r'name="email" type="email" value="new.colleague@example.test"[^>]*readonly', signup_page.text)
    await sign_up(visitor, "new.colleague@example.test", name="Nia Colleague", next=path, email_fixed="1")

    # the address is confirmed from the mail that arrived, which brings the person back here
    confirmation = mail_to(await smtp_sink.wait_for(2), "new.colleague@example.test", "Confirm your email address")
    r = await confirm(visitor, verify_path(confirmation), "new.colleague@example.test")
    assert r.status_code == 303 and r.headers["location"] == path
    landing = await visitor.get(path)
    assert "Accept and join Globex Research" in text_of(landing)
    r = await visitor.post(f"{path}/accept")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}"
    dashboard = await visitor.get(f"/orgs/{org.slug}")
    assert dashboard.status_code == 200
    assert "Welcome to Globex Research! You joined as Compliance officer." in text_of(dashboard)

    role = await su.fetchval(
        "SELECT m.role FROM membership m JOIN app_user u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = $2",
        org.id, "new.colleague@example.test",
    )
    assert role == "compliance_officer"
    actions = [r["action"] for r in await su.fetch("SELECT action FROM audit_event WHERE org_id = $1 ORDER BY created_at", org.id)]
    assert actions == ["invite.created", "invite.accepted", "member.joined"]
    # single use: the link is dead now, and the invite left the pending list
    assert (await visitor.get(path)).status_code == 404
    assert "new.colleague@example.test" not in text_of(await owner.get(f"/orgs/{org.slug}/invites"))


async def test_invite_through_the_outbox_and_an_existing_account_gains_a_membership(
    app, outbox, make_org, make_user, make_member, client_for, su, caplog
):
    org, elsewhere = await make_org(), await make_org()
    colleague = await make_user()
    await make_member(elsewhere, "member", colleague)
    owner = await client_for(org.owner)
    caplog.set_level(logging.INFO, logger="portal.mail.outbox")
    await send_invite(owner, org, colleague.email.upper(), "billing_admin")

    [message] = outbox_messages(outbox)
    assert [p.suffix for p in outbox.iterdir()] == [".eml"]
    assert oct(outbox.stat().st_mode & 0o777) == "0o700"
    path = link_in(message)
    assert f"http://testserver{path}" in caplog.text  # the outbox logs the link (development)

    visitor = Client(app)
    landing = await visitor.get(path)
    sign_in = href(landing, "Sign in")
    assert parse_qs(urlsplit(sign_in).query)["next"] == [path]
    login_page = await visitor.get(sign_in)
    assert f'value="{colleague.email}"' in login_page.text and f'name="next" value="{path}"' in login_page.text
    r = await visitor.post("/login", {"email": colleague.email, "password": PASSWORD, "next": path})
    assert r.status_code == 303 and r.headers["location"] == path
    r = await visitor.post(f"{path}/accept")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}"
    roles = await su.fetch("SELECT org_id, role FROM membership WHERE user_id = $1", colleague.id)
    assert {(x["org_id"], x["role"]) for x in roles} == {(elsewhere.id, "member"), (org.id, "billing_admin")}
    # the org switcher now lists both
    orgs_page = await visitor.get("/orgs")
    assert org.name in orgs_page.text and elsewhere.name in orgs_page.text


async def test_the_landing_page_never_changes_state(app, make_org, make_user, make_invite, client_for, snapshot):
    org = await make_org()
    invitee = await make_user()
    token, _ = await make_invite(org, invitee.email)
    clients = (Client(app), await client_for(invitee), await client_for(await make_user()))
    before = await snapshot(org.id)
    for c in clients:
        r = await c.get(f"/invites/{token}")
        assert r.status_code == 200
    assert await snapshot(org.id) == before


async def test_accepting_requires_sign_in_and_csrf(app, make_org, make_user, make_invite, client_for, snapshot):
    org = await make_org()
    invitee = await make_user()
    token, _ = await make_invite(org, invitee.email)
    before = await snapshot(org.id)
    anonymous = Client(app)
    r = await anonymous.post(f"/invites/{token}/accept")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    signed_in = await client_for(invitee)
    r = await signed_in.post(f"/invites/{token}/accept", csrf=False)
    assert r.status_code == 403
    assert await snapshot(org.id) == before
    assert (await signed_in.post(f"/invites/{token}/accept")).status_code == 303


async def test_signed_in_as_another_address_explains_and_keeps_the_invite(app, make_org, make_user, make_invite, client_for, snapshot, su):
    org = await make_org()
    invitee = await make_user(email="Invitee.Person@example.test")
    token, _ = await make_invite(org, "INVITEE.person@Example.TEST")  # stored lower-cased
    other = await make_user()
    c = await client_for(other)
    landing = await c.get(f"/invites/{token}")
    assert landing.status_code == 200
    body = text_of(landing)
    assert "This invite is for invitee.person@example.test" in body and other.email in body
    assert f'name="next" value="/invites/{token}"' in landing.text  # sign out comes back here
    before = await snapshot(org.id)
    r = await c.post(f"/invites/{token}/accept")
    assert r.status_code == 403
    assert_private_link_headers(r)
    assert "This invite is for invitee.person@example.test" in text_of(r)
    assert await snapshot(org.id) == before
    # "sign out and continue" returns to the landing page, now anonymous
    r = await c.post("/logout", {"next": f"/invites/{token}"})
    assert r.status_code == 303 and r.headers["location"] == f"/invites/{token}"
    assert "Create account" in text_of(await c.get(f"/invites/{token}"))
    # the invite is still usable by its addressee (case-insensitively)
    right = await client_for(invitee)
    assert (await right.post(f"/invites/{token}/accept")).status_code == 303
    assert await su.fetchval("SELECT role FROM membership WHERE org_id = $1 AND user_id = $2", org.id, invitee.id) == "member"


async def test_owner_list_shows_inviter_role_sent_and_expiry(app, outbox, make_org, client_for):
    org = await make_org()
    owner = await client_for(org.owner)
    await send_invite(owner, org, "grace@example.test", "billing_admin")
    page = await owner.get(f"/orgs/{org.slug}/invites")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    row = re.search(r'<tr id="invite-[^"]+">(.*?)</tr>', page.text, re.S).group(1)
    assert "grace@example.test" in row and "Billing admin" in row and org.owner.name in row
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row)) == 2  # sent, expires
    assert "1 pending invite" in text_of(page)
    dashboard = await owner.get(f"/orgs/{org.slug}")
    assert re.search(r'<span class="stat-value">1</span><span class="stat-label">Pending invites</span>', dashboard.text)


async def test_resend_makes_a_new_link_and_kills_the_old_one(app, outbox, make_org, client_for, su):
    org = await make_org()
    owner = await client_for(org.owner)
    await send_invite(owner, org, "lin@example.test")
    first = link_in(outbox_messages(outbox)[0])
    old_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    r = await owner.post(f"/orgs/{org.slug}/invites/{old_id}/resend")
    assert r.status_code == 303
    await mail_queue.drain()
    second = link_in(outbox_messages(outbox)[1])
    assert first != second
    visitor = Client(app)
    assert (await visitor.get(first)).status_code == 404
    assert (await visitor.get(second)).status_code == 200
    rows = await su.fetch("SELECT id, superseded_at, replaced_by FROM invite WHERE org_id = $1 ORDER BY created_at", org.id)
    assert rows[0]["superseded_at"] is not None and rows[0]["replaced_by"] == rows[1]["id"]
    assert await su.fetchval("SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'invite.resent'", org.id) == 1
    assert "no longer works" in text_of(await owner.get(f"/orgs/{org.slug}/invites"))


async def test_resend_and_revoke_with_htmx_swap_the_row(app, outbox, make_org, client_for, su):
    org = await make_org()
    owner = await client_for(org.owner)
    await send_invite(owner, org, "ana@example.test")
    invite_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    r = await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/resend", htmx=True)
    assert r.status_code == 200 and r.text.lstrip().startswith("<tr id=\"invite-")
    assert "<html" not in r.text and 'hx-swap-oob="true"' in r.text and "A new link is being emailed" in r.text
    new_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1 AND superseded_at IS NULL", org.id)
    assert f"invite-{new_id}" in r.text and "Sending" in r.text  # the row polls for its delivery
    await mail_queue.drain()
    row = await owner.get(f"/orgs/{org.slug}/invites/{new_id}", headers={"HX-Request": "true"})
    assert row.status_code == 200 and "Sending" not in row.text and "ana@example.test" in row.text
    plain = await owner.get(f"/orgs/{org.slug}/invites/{new_id}")
    assert plain.status_code == 303  # without htmx the row URL is the list
    r = await owner.post(f"/orgs/{org.slug}/invites/{new_id}/revoke", htmx=True)
    assert r.status_code == 200 and "<tr" not in r.text and "was revoked" in r.text
    assert await su.fetchval("SELECT revoked_at IS NOT NULL FROM invite WHERE id = $1", new_id)
    link = link_in(outbox_messages(outbox)[-1])
    assert (await Client(app).get(link)).status_code == 404
    # a second revoke of the same invite explains instead of pretending
    again = await owner.post(f"/orgs/{org.slug}/invites/{new_id}/revoke")
    assert again.status_code == 409 and "already revoked" in text_of(again)
    gone = await owner.get(f"/orgs/{org.slug}/invites/{new_id}", headers={"HX-Request": "true"})
    assert gone.status_code == 200 and gone.text.strip() == ""


async def test_revoke_without_javascript(app, make_org, make_invite, client_for, su):
    org = await make_org()
    token, invite_id = await make_invite(org, "revoke-me@example.test")
    owner = await client_for(org.owner)
    r = await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/revoke")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}/invites"
    assert "The invite for revoke-me@example.test was revoked" in text_of(await owner.get(r.headers["location"]))
    assert (await Client(app).get(f"/invites/{token}")).status_code == 404
    assert await su.fetchval("SELECT action FROM audit_event WHERE org_id = $1", org.id) == "invite.revoked"


async def test_inviting_a_member_a_pending_address_or_as_owner_explains(app, make_org, make_member, make_invite, client_for, snapshot):
    org = await make_org()
    member = await make_member(org, "member")
    await make_invite(org, "pending@example.test")
    owner = await client_for(org.owner)
    before = await snapshot(org.id)
    cases = [
        ({"email": member.email.upper(), "role": "member"}, "is already a member"),
        ({"email": org.owner.email, "role": "member"}, "is already a member"),
        ({"email": "Pending@Example.test", "role": "member"}, "already has a pending invite"),
        ({"email": "new@example.test", "role": "owner"}, "Ownership can't be given by invite"),
        ({"email": "new@example.test", "role": "superuser"}, "Choose a role"),
        ({"email": "not an email", "role": "member"}, "Enter a valid email address"),
        ({"role": "member"}, "Enter your email address"),
    ]
    for data, message in cases:
        r = await owner.post(f"/orgs/{org.slug}/invites", data)
        assert r.status_code == 422, data
        assert message in html.unescape(text_of(r)), data
        h = await owner.post(f"/orgs/{org.slug}/invites", data, htmx=True)
        assert h.status_code == 422 and h.text.lstrip().startswith('<section class="card" id="invite-form">')
        assert message in html.unescape(text_of(h))
    assert await snapshot(org.id) == before


async def test_an_expired_pending_invite_is_replaced_by_a_new_one(app, outbox, make_org, make_invite, client_for, su):
    from datetime import datetime, timedelta, timezone

    org = await make_org()
    old_token, old_id = await make_invite(org, "late@example.test", created_at=datetime.now(timezone.utc) - timedelta(days=8))
    owner = await client_for(org.owner)
    listing = await owner.get(f"/orgs/{org.slug}/invites")
    assert "Expired" in text_of(listing)
    await send_invite(owner, org, "late@example.test")
    rows = await su.fetch("SELECT id, superseded_at, replaced_by FROM invite WHERE org_id = $1 ORDER BY created_at", org.id)
    assert rows[0]["id"] == old_id and rows[0]["superseded_at"] and rows[0]["replaced_by"] == rows[1]["id"]
    assert (await Client(app).get(link_in(outbox_messages(outbox)[0]))).status_code == 200


async def test_non_owners_cannot_invite_resend_or_revoke(app, make_org, make_member, make_invite, client_for, snapshot):
    org = await make_org()
    _, invite_id = await make_invite(org, "someone@example.test")
    base = f"/orgs/{org.slug}/invites"
    for role in ("billing_admin", "compliance_officer", "member"):
        c = await client_for(await make_member(org, role))
        before = await snapshot(org.id)
        assert (await c.get(base)).status_code == 403, role
        assert (await c.get(f"{base}/{invite_id}", headers={"HX-Request": "true"})).status_code == 403, role
        assert (await c.post(base, {"email": "x@example.test", "role": "member"})).status_code == 403, role
        assert (await c.post(base, {"email": "x@example.test", "role": "owner"})).status_code == 403, role
        assert (await c.post(f"{base}/{invite_id}/resend")).status_code == 403, role
        assert (await c.post(f"{base}/{invite_id}/revoke", htmx=True)).status_code == 403, role
        assert await snapshot(org.id) == before, role
        assert ">Invites</a>" not in (await c.get(f"/orgs/{org.slug}")).text  # no sidebar entry


async def test_an_invite_id_of_another_org_is_not_found(app, make_org, make_invite, client_for, snapshot):
    mine, theirs = await make_org(), await make_org()
    _, their_invite = await make_invite(theirs, "victim@example.test")
    owner = await client_for(mine.owner)
    before = await snapshot(theirs.id)
    base = f"/orgs/{mine.slug}/invites"
    for method, url in [
        ("post", f"{base}/{their_invite}/resend"),
        ("post", f"{base}/{their_invite}/revoke"),
        ("get", f"{base}/{their_invite}"),
        ("post", f"{base}/not-a-uuid/resend"),
        ("post", f"{base}/00000000-0000-0000-0000-000000000000/revoke"),
        ("post", f"/orgs/{theirs.slug}/invites/{their_invite}/revoke"),
        ("get", f"/orgs/{theirs.slug}/invites"),
    ]:
        kw = {"headers": {"HX-Request": "true"}} if method == "get" else {}
        r = await (owner.get(url, **kw) if method == "get" else owner.post(url))
        assert r.status_code == 404, (method, url, r.status_code)
    assert await snapshot(theirs.id) == before


async def test_seat_limit_counts_members_and_pending_invites(app, outbox, make_org, make_member, make_invite, client_for, su, snapshot):
    org = await make_org()
    await make_member(org, "member")
    await su.execute("UPDATE billing_settings SET seat_limit = 3 WHERE org_id = $1", org.id)
    owner = await client_for(org.owner)
    await send_invite(owner, org, "third@example.test")  # 2 members + 1 pending = 3 seats
    before = await snapshot(org.id)
    r = await owner.post(f"/orgs/{org.slug}/invites", {"email": "fourth@example.test", "role": "member"})
    assert r.status_code == 422
    assert "All 3 seats are taken (2 members, 1 pending invites)" in text_of(r)
    assert await snapshot(org.id) == before
    invite_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    assert (await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/revoke")).status_code == 303
    await send_invite(owner, org, "fourth@example.test")


async def test_invite_creation_is_rate_limited_per_org(app, outbox, make_org, client_for, snapshot, monkeypatch):
    from portal.invites import service

    monkeypatch.setattr(service, "INVITES_PER_HOUR", 3)
    org, other = await make_org(), await make_org()
    owner = await client_for(org.owner)
    for i in range(3):
        await send_invite(owner, org, f"burst{i}@example.test")
    before = await snapshot(org.id)
    r = await owner.post(f"/orgs/{org.slug}/invites", {"email": "burst9@example.test", "role": "member"})
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 3600
    assert "invites in the last hour" in text_of(r)
    assert await snapshot(org.id) == before
    # resends count too: each one sends an email
    invite_id = re.search(r'id="invite-([0-9a-f-]{36})"', (await owner.get(f"/orgs/{org.slug}/invites")).text).group(1)
    assert (await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/resend")).status_code == 429
    # another org is not affected
    await send_invite(await client_for(other.owner), other, "burst9@example.test")
