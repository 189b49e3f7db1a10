"""Accounts and sessions: sign-up, sign-in, sign-out, fixation, replay, timeouts, throttling."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st

from portal import clock
from portal.mail import queue as mail_queue
from tests.factories import PASSWORD, Client, confirm, mail_to, sign_up, text_of, unique, verify_path
from tests.mail_sink import outbox_messages


async def signup(client, email=None, name="Ada Lovelace", password="a-long-password-1"):
    email = email or f"{unique('ada')}@example.test"
    return email, await client.post("/signup", {"email": email, "name": name, "password": password})


async def test_signup_mails_a_link_signs_nobody_in_and_the_person_signs_in(client, outbox):
    email, r = await signup(client)
    assert r.status_code == 303
    assert "portal_session" not in r.cookies
    assert (await client.get("/orgs")).status_code == 303  # not signed in by signing up
    page = await client.get(r.headers["location"])
    assert page.status_code == 200 and "Check your inbox" in page.text and email in page.text
    await mail_queue.drain()
    path = verify_path(mail_to(outbox_messages(outbox), email, "Confirm your email address"))

    # unverified accounts sign in and use the portal
    r = await client.post("/login", {"email": email, "password": "a-long-password-1"})
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    page = await client.get("/orgs")
    assert page.status_code == 200 and "Create an organization" in page.text and "Ada Lovelace" in page.text
    assert "Not confirmed" in text_of(await client.get("/account"))

    r = await confirm(client, path, email)
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    assert "is confirmed as your email address" in text_of(await client.get("/orgs"))
    account = text_of(await client.get("/account"))
    assert "Confirmed" in account and "Not confirmed" not in account and "Email me a new link" not in account


async def test_signup_rejects_bad_input_with_messages(client):
    _, r = await signup(client, email="not-an-email", name="", password="short")
    assert r.status_code == 422
    body = text_of(r)
    assert "Enter a valid email address" in body and "Enter your name" in body and "at least 10 characters" in body
    for name in ("Eve\x07", "Ev\x85e"):  # C0 and C1 alike, as every other single-line field
        _, r = await signup(client, email="eve@example.test", name=name, password="a long enough password")
        assert r.status_code == 422 and "control characters" in text_of(r), name


async def test_signup_with_a_taken_email_says_nothing_about_it(app, outbox, make_user):
    """The oracle the old form had ("already exists") is gone; tests/accounts/test_verify_email.py
    compares the two answers byte for byte."""
    user = await make_user()
    c = Client(app)
    _, r = await signup(c, email=user.email.upper())
    assert r.status_code == 303
    page = await c.get(r.headers["location"])
    assert "already exists" not in page.text and "Check your inbox" in page.text
    await c.aclose()


async def test_one_mailbox_has_one_spelling_and_one_account(app, su, outbox):
    """A domain typed in Unicode is the same mailbox as its ASCII form: no second account, and the
    address is stored in ASCII. A Unicode part before the @ is refused."""
    name = unique("dup")
    c = Client(app)
    await sign_up(c, f"{name}@example.test")
    await sign_up(c, f"{name}@ｅxample.test")  # a full-width e
    await sign_up(c, f"{name}@bücher.test")
    rows = await su.fetch("SELECT email FROM app_user WHERE email LIKE $1 ORDER BY email", f"{name}@%")
    assert [r["email"] for r in rows] == [f"{name}@example.test", f"{name}@xn--bcher-kva.test"]
    r = await c.post("/signup", {"email": "jö@example.test", "name": "Jo", "password": "a long enough password"})
    assert r.status_code == 422 and "valid email address" in r.text
    await c.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.fixed_dictionaries(
        {},
        optional={
            "email": st.one_of(st.text(max_size=400), st.emails()),
            "name": st.text(max_size=300),
            "password": st.text(max_size=300),
            "next": st.text(max_size=50),
        },
    )
)
async def test_signup_fuzz_never_500(app, data):
    """Malformed, huge, unicode and missing input: 303 or 422 with the security headers, never 500."""
    c = Client(app)
    r = await c.post("/signup", data)
    assert r.status_code in (303, 422), (data, r.status_code)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    await c.aclose()


async def test_login_with_wrong_password_or_unknown_email_gives_one_generic_error(client, make_user):
    user = await make_user()
    r1 = await client.post("/login", {"email": user.email, "password": "wrong-password"})
    r2 = await client.post("/login", {"email": "nobody@example.test", "password": "wrong-password"})
    assert r1.status_code == r2.status_code == 422
    assert "Incorrect email or password." in r1.text and "Incorrect email or password." in r2.text


async def test_login_redirects_only_to_local_paths(client, make_user):
    user = await make_user()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        c = Client(client.http._transport.app)
        r = await c.post("/login", {"email": user.email, "password": PASSWORD, "next": evil})
        assert r.status_code == 303 and r.headers["location"] == "/orgs", evil
        await c.aclose()
    r = await client.post("/login", {"email": user.email, "password": PASSWORD, "next": "/account"})
    assert r.headers["location"] == "/account"


async def test_login_is_throttled_per_email(app, make_user):
    user = await make_user()
    c = Client(app)
    for _ in range(5):
        assert (await c.post("/login", {"email": user.email, "password": "nope-nope-nope"})).status_code == 422
    r = await c.post("/login", {"email": user.email, "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in r.text
    # another address from another client is unaffected
    other = await make_user()
    c2 = Client(app)
    assert (await c2.post("/login", {"email": other.email, "password": PASSWORD})).status_code == 303
    await c.aclose()
    await c2.aclose()


async def test_session_fixation_planted_cookie_is_replaced_and_dead(app, make_user, su):
    from portal.accounts import sessions

    user = await make_user()
    attacker_token = await sessions.create(user.id)  # a session the attacker knows
    victim = Client(app)
    victim.http.cookies.set(sessions.COOKIE, attacker_token, domain="testserver.local")
    r = await victim.post("/login", {"email": user.email, "password": PASSWORD})
    assert r.status_code == 303
    new_token = r.cookies.get(sessions.COOKIE)
    assert new_token and new_token != attacker_token
    # the planted id no longer works
    attacker = Client(app)
    attacker.http.cookies.set(sessions.COOKIE, attacker_token, domain="testserver.local")
    assert (await attacker.get("/orgs")).status_code == 303
    # the stored value is a hash, not the cookie
    assert await su.fetchval("SELECT count(*) FROM user_session WHERE token_hash = $1", new_token) == 0
    await victim.aclose()
    await attacker.aclose()


async def test_cookie_flags(client, make_user):
    user = await make_user()
    r = await client.post("/login", {"email": user.email, "password": PASSWORD})
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("portal_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


async def test_sign_out_kills_the_session_server_side(client_for, make_user, app):
    from portal.accounts import sessions

    user = await make_user()
    c = await client_for(user)
    token = c.http.cookies.get(sessions.COOKIE)
    assert (await c.get("/orgs")).status_code == 200
    r = await c.post("/logout")
    assert r.status_code == 303
    replay = Client(app)
    replay.http.cookies.set(sessions.COOKIE, token, domain="testserver.local")
    assert (await replay.get("/orgs")).status_code == 303
    await replay.aclose()


async def test_sign_out_everywhere(client_for, make_user):
    user = await make_user()
    a, b = await client_for(user), await client_for(user)
    r = await a.post("/account/sign-out-everywhere")
    assert r.status_code == 303
    assert (await b.get("/orgs")).status_code == 303
    assert (await a.get("/orgs")).status_code == 303


async def test_idle_and_absolute_timeouts_are_enforced_server_side(client_for, make_user):
    user = await make_user()
    c = await client_for(user)
    clock.advance(timedelta(hours=7, minutes=59))
    assert (await c.get("/orgs")).status_code == 200  # touched: idle timer restarts
    clock.advance(timedelta(hours=7, minutes=59))
    assert (await c.get("/orgs")).status_code == 200
    clock.advance(timedelta(hours=8, minutes=1))
    assert (await c.get("/orgs")).status_code == 303  # idle too long

    clock.reset()
    c2 = await client_for(user)
    hours = 0
    while hours < 24 * 15:  # active every 7 hours, never idle
        clock.advance(timedelta(hours=7))
        hours += 7
        if (await c2.get("/orgs")).status_code == 303:
            break
    assert 24 * 14 <= hours < 24 * 14 + 7  # cut off at the 14-day absolute lifetime
