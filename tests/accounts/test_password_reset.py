"""Password reset: an emailed link that works once and for an hour, the same answer for every
address, and every old session dead afterwards."""

from __future__ import annotations

import html
from datetime import timedelta

from portal import clock
from portal.mail import queue as mail_queue
from tests.factories import PASSWORD, Client, text_of, without_nonces
from tests.mail_sink import RESET_LINK, link_in, outbox_messages, text_of as mail_text

NEW_PASSWORD = "a-brand-new-password-42"


async def ask(app, email: str) -> None:
    c = Client(app)
    r = await c.post("/forgot-password", {"email": email})
    assert r.status_code == 303 and r.headers["location"] == "/forgot-password?sent=1"
    await mail_queue.drain()
    await c.aclose()


async def test_reset_by_smtp_works_once_and_signs_out_everywhere(app, smtp_sink, make_user, client_for):
    user = await make_user()
    laptop, phone = await client_for(user), await client_for(user)
    assert (await laptop.get("/orgs")).status_code == 200
    await ask(app, user.email.upper())
    [message] = await smtp_sink.wait_for(1)
    assert message["To"] == user.email and "Reset your Praesidia password" == message["Subject"]
    assert "1 hour" in mail_text(message) and user.name in mail_text(message)
    path = link_in(message, RESET_LINK)

    visitor = Client(app)
    form = await visitor.get(path)
    assert form.status_code == 200 and "Choose a new password" in text_of(form)
    assert form.headers["referrer-policy"] == "no-referrer" and form.headers["cache-control"] == "no-store"
    assert f'value="{user.email}"' in form.text
    r = await visitor.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "Your password has been changed" in text_of(await visitor.get("/login"))

    # every earlier session is dead
    for old in (laptop, phone):
        assert (await old.get("/orgs")).status_code == 303
    # the new password works, the old one does not
    assert (await Client(app).post("/login", {"email": user.email, "password": PASSWORD})).status_code == 422
    assert (await Client(app).post("/login", {"email": user.email, "password": NEW_PASSWORD})).status_code == 303
    # the link worked once
    again = await visitor.get(path)
    assert again.status_code == 404 and "no longer valid" in text_of(again)
    replay = await visitor.post(path, {"password": "yet-another-password-1", "confirm": "yet-another-password-1"})
    assert replay.status_code == 404
    assert (await Client(app).post("/login", {"email": user.email, "password": NEW_PASSWORD})).status_code == 303


async def test_unknown_address_gets_exactly_the_same_answer(app, outbox, make_user):
    user = await make_user()
    answers = []
    for email in (user.email, "nobody-here@example.test"):
        c = Client(app)
        r = await c.post("/forgot-password", {"email": email})
        page = await c.get(r.headers["location"])
        answers.append((r.status_code, r.headers["location"], page.status_code, without_nonces(page.text)))
    assert answers[0] == answers[1]
    assert "If an account uses that address" in html.unescape(answers[0][3])
    await mail_queue.drain()
    messages = outbox_messages(outbox)
    assert [m["To"] for m in messages] == [user.email]


async def test_the_link_expires_after_one_hour(app, outbox, make_user):
    user = await make_user()
    await ask(app, user.email)
    path = link_in(outbox_messages(outbox)[0], RESET_LINK)
    c = Client(app)
    clock.advance(timedelta(minutes=59, seconds=59))
    assert (await c.get(path)).status_code == 200
    clock.advance(timedelta(seconds=2))  # 1 h + 1 s
    assert (await c.get(path)).status_code == 404
    r = await c.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 404
    assert (await Client(app).post("/login", {"email": user.email, "password": PASSWORD})).status_code == 303


async def test_using_one_link_kills_every_other_and_garbage_gets_the_same_page(app, outbox, make_user):
    user = await make_user()
    await ask(app, user.email)
    await ask(app, user.email)
    first, second = (link_in(m, RESET_LINK) for m in outbox_messages(outbox))
    c = Client(app)
    assert (await c.post(second, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})).status_code == 303
    await c.get("/login")  # shows (and clears) the "password changed" message
    dead = {without_nonces((await c.get(first)).text)}
    for garbage in (first[:-3] + "abc", "/reset-password/nonsense", "/reset-password/" + "x" * 1000, second):
        r = await c.get(garbage)
        assert r.status_code == 404, garbage
        dead.add(without_nonces(r.text))
    assert len(dead) == 1


async def test_validation_errors_keep_the_link_alive(app, outbox, make_user):
    user = await make_user()
    await ask(app, user.email)
    path = link_in(outbox_messages(outbox)[0], RESET_LINK)
    c = Client(app)
    r = await c.post(path, {"password": "short", "confirm": "short"})
    assert r.status_code == 422 and "at least 10 characters" in text_of(r)
    r = await c.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert r.status_code == 422 and "don't match" in html.unescape(text_of(r))
    assert (await c.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})).status_code == 303


async def test_requests_are_rate_limited_per_client_and_mail_per_address(app, outbox, make_user, monkeypatch):
    from portal.accounts import reset

    monkeypatch.setattr(reset, "REQUESTS_PER_CLIENT", 3)
    user = await make_user()
    c = Client(app)
    for _ in range(3):
        assert (await c.post("/forgot-password", {"email": user.email})).status_code == 303
    r = await c.post("/forgot-password", {"email": user.email})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # a fourth request from elsewhere is answered the same way, but no fourth mail goes out
    assert (await Client(app).post("/forgot-password", {"email": user.email})).status_code == 303
    await mail_queue.drain()
    assert len(outbox_messages(outbox)) == reset.MAILS_PER_ADDRESS == 3


async def test_reset_unblocks_a_throttled_sign_in(app, outbox, make_user):
    user = await make_user()
    c = Client(app)
    for _ in range(5):
        await c.post("/login", {"email": user.email, "password": "wrong-password!"})
    assert (await c.post("/login", {"email": user.email, "password": PASSWORD})).status_code == 429
    await ask(app, user.email)
    path = link_in(outbox_messages(outbox)[0], RESET_LINK)
    assert (await c.post(path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})).status_code == 303
    assert (await c.post("/login", {"email": user.email, "password": NEW_PASSWORD})).status_code == 303
