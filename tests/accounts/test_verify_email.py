"""Verified email (SPEC §10, SECURITY.md 36): sign-up never reveals whether an address has an
account; the emailed link confirms it once, within 48 hours, by POST from the account itself;
an unverified account cannot accept an invite, and can once it has confirmed."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from itsdangerous import URLSafeTimedSerializer

from portal import clock
from portal.accounts import service, verify
from portal.mail import queue as mail_queue
from tests.factories import (
    PASSWORD,
    SIGNUP_PASSWORD,
    VERIFY_LINK,
    Client,
    confirm,
    mail_to,
    sign_up,
    text_of,
    unique,
    verify_path,
    without_nonces,
)
from tests.mail_sink import outbox_messages, text_of as mail_text


async def verified_at(su, email: str):
    return await su.fetchval("SELECT email_verified_at FROM app_user WHERE email = $1", email)


def set_cookie_names(r) -> list[str]:
    return sorted(v.split("=", 1)[0] for k, v in r.headers.multi_items() if k == "set-cookie")


async def test_signup_answers_the_same_for_a_new_and_an_existing_address(app, smtp_sink, make_user, su, monkeypatch):
    existing = await make_user(name="Existing Person")
    before = await su.fetchrow("SELECT name, password_hash, email_verified_at FROM app_user WHERE id = $1", existing.id)
    new_email = f"{unique('fresh')}@example.test"
    hashed = []
    real_hash = service.hash_password

    async def counting_hash(password):
        hashed.append(password)
        return await real_hash(password)

    monkeypatch.setattr(service, "hash_password", counting_hash)

    answers = []
    for email in (existing.email, new_email):
        c = Client(app)
        await c.get("/signup")  # a visitor opens the form first (CSRF cookie)
        r = await c.post("/signup", {"email": email, "name": "Someone", "password": SIGNUP_PASSWORD})
        followed = await c.get(r.headers["location"])
        placeholder = lambda text: text.replace(email, "EMAIL").replace(email.replace("@", "%40"), "EMAIL")  # noqa: E731
        answers.append(
            (
                r.status_code,
                placeholder(r.headers["location"]),
                set_cookie_names(r),
                r.text,
                followed.status_code,
                set_cookie_names(followed),
                placeholder(without_nonces(followed.text)),
            )
        )
        await c.aclose()
    assert answers[0] == answers[1]
    assert answers[0][0] == 303 and "portal_session" not in answers[0][2]
    assert "Check your inbox" in answers[0][6] and "already exists" not in answers[0][6]
    assert len(hashed) == 2  # the existing address costs an argon2 hash too

    await mail_queue.drain()
    warning = mail_to(smtp_sink.messages, existing.email)
    assert "Someone tried to create a Praesidia account" in warning["Subject"]
    body = mail_text(warning)
    assert "Existing Person" in body and "no new account was created" in body
    assert f"http://testserver/login?email={existing.email.replace('@', '%40')}" in body
    assert f"http://testserver/forgot-password?email={existing.email.replace('@', '%40')}" in body
    assert not VERIFY_LINK.search(body)  # its address is verified already: nothing to confirm
    confirmation = mail_to(smtp_sink.messages, new_email)
    assert confirmation["Subject"] == "Confirm your email address for Praesidia"
    verify_path(confirmation)
    assert len(smtp_sink.messages) == 2
    # the existing account is untouched: not renamed, same password, same verification
    after = await su.fetchrow("SELECT name, password_hash, email_verified_at FROM app_user WHERE id = $1", existing.id)
    assert after == before
    assert await verified_at(su, new_email) is None


async def test_existing_unverified_account_gets_a_fresh_link_with_the_warning(app, outbox, make_user, su):
    user = await make_user(verified=False)
    await sign_up(Client(app), user.email)
    message = mail_to(outbox_messages(outbox), user.email)
    assert "Someone tried" in message["Subject"] and "isn't confirmed yet" in mail_text(message)
    c = Client(app)
    r = await c.get(verify_path(message))
    assert r.status_code == 200 and "Sign in to confirm" in r.text
    r = await confirm(c, verify_path(message), user.email, PASSWORD)
    assert r.status_code == 303 and await verified_at(su, user.email) is not None


async def test_get_never_verifies_and_the_link_works_once(app, outbox, su, make_user, client_for):
    email = f"{unique('once')}@example.test"
    visitor = Client(app)
    await sign_up(visitor, email)
    path = verify_path(mail_to(outbox_messages(outbox), email))

    # opened by a mail scanner, by a stranger, by the person signed in: nothing changes
    page = await Client(app).get(path)
    assert page.status_code == 200 and "Sign in to confirm" in text_of(page)
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    stranger = await client_for(await make_user())
    page = await stranger.get(path)
    assert page.status_code == 200 and "you're signed in as" in html.unescape(text_of(page))
    r = await visitor.post("/login", {"email": email, "password": SIGNUP_PASSWORD, "next": path})
    assert r.status_code == 303 and r.headers["location"] == path
    for _ in range(3):
        page = await visitor.get(path)
        assert page.status_code == 200 and "Confirm my email address" in page.text
    assert await verified_at(su, email) is None

    # the confirmation is a POST with the CSRF token, by the account itself
    assert (await visitor.post(path, csrf=False)).status_code == 403
    r = await Client(app).post(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = await stranger.post(path)
    assert r.status_code == 403 and "This link confirms the address of the account" in html.unescape(text_of(r))
    assert await verified_at(su, email) is None

    r = await visitor.post(path)
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    first = await verified_at(su, email)
    assert first is not None

    # once: the page and the confirmation are dead now, and nothing changes again
    again = await visitor.get(path)
    assert again.status_code == 404 and "no longer valid" in text_of(again)
    assert (await visitor.post(path)).status_code == 404
    assert await verified_at(su, email) == first


async def test_the_link_expires_after_48_hours(app, outbox, su):
    email = f"{unique('late')}@example.test"
    c = Client(app)
    await sign_up(c, email)
    path = verify_path(mail_to(outbox_messages(outbox), email))
    clock.advance(timedelta(hours=47, minutes=59, seconds=59))
    r = await c.post("/login", {"email": email, "password": SIGNUP_PASSWORD})
    assert r.status_code == 303
    page = await c.get(path)
    assert page.status_code == 200 and "Confirm my email address" in page.text
    clock.advance(timedelta(seconds=2))  # 48 h + 1 s
    page = await c.get(path)
    assert page.status_code == 404 and "expire after 48 hours" in text_of(page)
    assert (await c.post(path)).status_code == 404
    assert await verified_at(su, email) is None


async def test_garbage_and_forged_links_get_the_same_dead_page(app, make_user, su):
    user = await make_user(verified=False)
    forged = URLSafeTimedSerializer("not-our-secret", salt=verify.SALT).dumps({"u": str(user.id), "e": "x", "n": "/orgs"})
    other_address = verify.make_token(user.id, "someone-else@example.test")
    c = Client(app)
    pages = set()
    for token in (forged, other_address, "nonsense", "x" * 2000, "eyJ1IjoiMSJ9.AAAA.BBBB"):
        r = await c.get(f"/verify-email/{token}")
        assert r.status_code == 404, token[:40]
        pages.add(without_nonces(r.text))
    assert len(pages) == 1
    assert await verified_at(su, user.email) is None


async def test_unverified_account_cannot_accept_an_invite_until_it_confirms(app, smtp_sink, make_org, make_user, make_invite, client_for, su, snapshot):
    org = await make_org(name="Initech Labs")
    invitee = await make_user(verified=False)
    token, invite_id = await make_invite(org, invitee.email, "billing_admin")
    here = f"/invites/{token}"
    c = await client_for(invitee)

    landing = await c.get(here)
    assert landing.status_code == 200
    body = text_of(landing)
    assert "Before you can join, confirm that" in body and "Accept and join" not in body
    assert re.search(r'action="/account/verify-email/resend".*?name="next" value="' + re.escape(here), landing.text, re.S)

    before = await snapshot(org.id)
    sessions_before = await su.fetchval("SELECT count(*) FROM user_session WHERE user_id = $1", invitee.id)
    r = await c.post(f"{here}/accept")
    assert r.status_code == 403
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"
    assert "Before you can join, confirm that" in text_of(r)
    assert await snapshot(org.id) == before  # nothing written
    assert await su.fetchval("SELECT count(*) FROM user_session WHERE user_id = $1", invitee.id) == sessions_before
    assert await su.fetchval("SELECT accepted_at FROM invite WHERE id = $1", invite_id) is None

    # the landing page's button mails a new link that comes back to the invite
    r = await c.post("/account/verify-email/resend", {"next": here})
    assert r.status_code == 303 and r.headers["location"] == here
    assert "We've sent a new confirmation link" in html.unescape(text_of(await c.get(here)))
    await mail_queue.drain()
    r = await confirm(c, verify_path(mail_to(smtp_sink.messages, invitee.email)), invitee.email, PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == here

    landing = await c.get(here)
    assert "Accept and join Initech Labs" in text_of(landing)
    r = await c.post(f"{here}/accept")
    assert r.status_code == 303 and r.headers["location"] == f"/orgs/{org.slug}"
    assert await su.fetchval("SELECT role FROM membership WHERE org_id = $1 AND user_id = $2", org.id, invitee.id) == "billing_admin"


async def test_signing_up_from_an_invite_comes_back_to_it(app, outbox, make_org, make_invite, su):
    org = await make_org()
    email = f"{unique('invitee')}@example.test"
    token, _ = await make_invite(org, email)
    here = f"/invites/{token}"
    c = Client(app)
    r = await sign_up(c, email, next=here, email_fixed="1")
    assert parse_qs(urlsplit(r.headers["location"]).query)["next"] == [here]
    sent = await c.get(r.headers["location"])
    assert parse_qs(urlsplit(html.unescape(re.search(r'href="(/login\?[^"]+)"', sent.text).group(1))).query) == {
        "email": [email], "next": [here],
    }
    r = await confirm(c, verify_path(mail_to(outbox_messages(outbox), email)), email)
    assert r.status_code == 303 and r.headers["location"] == here
    assert (await c.post(f"{here}/accept")).status_code == 303
    assert await su.fetchval("SELECT count(*) FROM membership WHERE org_id = $1", org.id) == 2


async def test_resend_is_rate_limited_per_account(app, outbox, make_user, client_for):
    user = await make_user(verified=False)
    c = await client_for(user)
    account = await c.get("/account")
    assert "Not confirmed" in text_of(account) and "Email me a new link" in text_of(account)
    for _ in range(verify.RESENDS_PER_HOUR):
        r = await c.post("/account/verify-email/resend")
        assert r.status_code == 303 and r.headers["location"] == "/account"
    r = await c.post("/account/verify-email/resend")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # from another session of the same account: the same limit
    assert (await (await client_for(user)).post("/account/verify-email/resend")).status_code == 429
    await mail_queue.drain()
    assert len([m for m in outbox_messages(outbox) if m["To"] == user.email]) == verify.RESENDS_PER_HOUR
    clock.advance(timedelta(hours=1, seconds=1))
    c = await client_for(user)
    assert (await c.post("/account/verify-email/resend")).status_code == 303


async def test_resend_for_a_verified_account_sends_nothing(app, outbox, make_user, client_for):
    user = await make_user()
    c = await client_for(user)
    assert "Email me a new link" not in text_of(await c.get("/account"))
    r = await c.post("/account/verify-email/resend")
    assert r.status_code == 303
    assert "already confirmed" in text_of(await c.get("/account"))
    await mail_queue.drain()
    assert outbox_messages(outbox) == []


async def test_signup_mails_to_one_address_are_capped_silently(app, outbox, make_user):
    user = await make_user()
    for _ in range(verify.MAILS_PER_ADDRESS + 2):
        await sign_up(Client(app), user.email)  # each from another client, each answered alike
    await mail_queue.drain()
    assert len([m for m in outbox_messages(outbox) if m["To"] == user.email]) == verify.MAILS_PER_ADDRESS


async def test_demo_accounts_are_verified(app, su):
    from portal import demo

    emails = [demo.DEMO_OWNER[0], *(p[0] for p in demo.DEMO_PEOPLE)]
    await demo.load_demo()
    # a demo loaded before verification existed is brought up to date by the next `portal demo`
    await su.execute("UPDATE app_user SET email_verified_at = NULL WHERE email = $1", emails[-1])
    assert await demo.load_demo() is False
    for email in emails:
        assert await verified_at(su, email) is not None, email


async def test_a_completed_password_reset_confirms_the_address(app, su, make_user):
    """The reset link came by mail: using it proves the mailbox."""
    from portal.accounts import reset

    user = await make_user(verified=False)
    row = await su.fetchrow("SELECT id, password_hash FROM app_user WHERE id = $1", user.id)
    token = reset.make_token(row["id"], row["password_hash"])
    await reset.reset_password(token, "a-brand-new-password-1", "a-brand-new-password-1")
    assert await su.fetchval("SELECT email_verified_at IS NOT NULL FROM app_user WHERE id = $1", user.id)
