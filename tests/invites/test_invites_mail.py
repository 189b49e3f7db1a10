"""The mail module and invite delivery: SMTP_URL forms, TLS and authentication against a real
server, failure and recovery, and mail that leaves only after the invite has committed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from portal import mail
from portal.devdb import free_port
from portal.mail import background
from portal.mail.smtp import SmtpTarget
from tests.factories import Client, send_invite, text_of
from tests.mail_sink import SmtpSink, link_in, mail_settings, self_signed_tls, text_of as mail_text


@pytest.mark.parametrize(
    "url,expected",
    [
        ("smtp://mail.internal", dict(host="mail.internal", port=25, use_tls=False, start_tls=False, username=None)),
        ("smtp://mail.internal:2525?starttls=1", dict(port=2525, start_tls=True)),
        ("smtp://relay?starttls=true", dict(port=587, start_tls=True)),
        ("smtp+starttls://ann%40corp:p%3Ass%2Fw@smtp.example.com", dict(port=587, start_tls=True, username="ann@corp", password="p:ss/w")),
        ("smtps://u:pw@smtp.example.com", dict(port=465, use_tls=True, start_tls=False, username="u", password="pw")),
        ("SMTPS://smtp.example.com:1465?timeout=5&cafile=/etc/ca.pem", dict(port=1465, use_tls=True, timeout=5.0, cafile="/etc/ca.pem")),
    ],
)
def test_smtp_url_forms(url, expected):
    target = SmtpTarget.parse(url)
    for key, value in expected.items():
        assert getattr(target, key) == value, key


@pytest.mark.parametrize("url", ["http://mail.example.com", "smtp://", "smtp://host:notaport", "smtp://host?timeout=soon", "mail.example.com"])
def test_bad_smtp_urls_are_explained(url):
    with pytest.raises(mail.MailError) as info:
        SmtpTarget.parse(url)
    assert "SMTP_URL" in info.value.reason


def test_the_smtp_password_never_shows():
    target = SmtpTarget.parse("smtps://user:hunter2-secret@smtp.example.com")
    assert "hunter2" not in repr(target) and "hunter2" not in target.where


def test_headers_cannot_be_injected():
    message = mail.build_message(
        mail.Mail(to="a@example.test", subject="Hi\r\nBcc: victim@example.test", text="t", html="<p>h</p>"),
        "Praesidia <no-reply@example.test>",
    )
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    assert message["Auto-Submitted"] == "auto-generated" and message["Message-ID"].endswith("@example.test>")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


async def test_starttls_with_authentication_against_a_real_server(app, tmp_path):
    context, ca = self_signed_tls(tmp_path)
    sink = SmtpSink(tls=context, require_starttls=True, credentials=("portal", "s3cret:pw")).start()
    try:
        with mail_settings(smtp_url=sink.url("smtp+starttls", f"cafile={ca}", "portal:s3cret%3Apw")):
            await mail.send(mail.Mail(to="x@example.test", subject="Hello", text="plain body", html="<p>html body</p>"))
        [message] = await sink.wait_for(1)
        assert sink.logins == ["portal"] and sink.tls_seen == [True]
        assert mail_text(message).strip() == "plain body"
        # wrong password: a clear reason, no credential in it
        with mail_settings(smtp_url=sink.url("smtp+starttls", f"cafile={ca}", "portal:wrong-password")):
            with pytest.raises(mail.MailError) as info:
                await mail.send(mail.Mail(to="x@example.test", subject="Hello", text="t", html="h"))
        assert "rejected our sign-in" in info.value.reason and "wrong-password" not in info.value.reason
        # an untrusted certificate is refused (certificates are always verified)
        with mail_settings(smtp_url=sink.url("smtp+starttls", "", "portal:s3cret%3Apw")):
            with pytest.raises(mail.MailError) as info:
                await mail.send(mail.Mail(to="x@example.test", subject="Hello", text="t", html="h"))
        assert "secure connection" in info.value.reason or "could not reach" in info.value.reason
    finally:
        sink.stop()


async def test_implicit_tls_against_a_real_server(app, tmp_path):
    context, ca = self_signed_tls(tmp_path)
    sink = SmtpSink(tls=context, implicit_tls=True).start()
    try:
        with mail_settings(smtp_url=sink.url("smtps", f"cafile={ca}")):
            await mail.send(mail.Mail(to="y@example.test", subject="Over TLS", text="t", html="h"))
        await sink.wait_for(1)
        assert sink.tls_seen == [True]
    finally:
        sink.stop()


async def test_smtp_down_tells_the_owner_and_resend_works_once_it_is_back(app, make_org, client_for, su):
    org = await make_org()
    owner = await client_for(org.owner)
    port = free_port()  # nothing listens here yet
    with mail_settings(smtp_url=f"smtp://127.0.0.1:{port}"):
        await send_invite(owner, org, "patient@example.test")
        listing = await owner.get(f"/orgs/{org.slug}/invites")
        body = text_of(listing)
        assert "Some invites could not be emailed" in body
        assert f"Not delivered Could not reach the mail server at 127.0.0.1:{port}. Resend to try again." in body
        row = await su.fetchrow("SELECT id, send_error, last_sent_at, accepted_at, revoked_at FROM invite WHERE org_id = $1", org.id)
        assert row["send_error"].startswith("could not reach") and row["last_sent_at"] is None
        assert row["accepted_at"] is None and row["revoked_at"] is None  # still pending

        sink = SmtpSink(port=port).start()
        try:
            r = await owner.post(f"/orgs/{org.slug}/invites/{row['id']}/resend")
            assert r.status_code == 303
            await background.drain()
            [message] = await sink.wait_for(1)
        finally:
            sink.stop()
    path = link_in(message)
    assert (await Client(app).get(path)).status_code == 200
    listing = text_of(await owner.get(f"/orgs/{org.slug}/invites"))
    assert "Not delivered" not in listing and "could not be emailed" not in listing
    assert await su.fetchval("SELECT count(*) FROM invite WHERE org_id = $1 AND send_error IS NULL AND last_sent_at IS NOT NULL", org.id) == 1


async def test_mail_leaves_only_after_the_invite_commits(app, make_org, su, monkeypatch):
    """The delivery task waits for the creating transaction: nothing is sent while it is open,
    nothing at all if it rolls back, and the invite is durable when the mail goes out."""
    from portal.db import engine as db
    from portal.invites import delivery, service
    from portal.tenancy.context import resolve
    from portal.tenancy.permissions import Perm

    sent: list[tuple[str, int]] = []

    async def recording_send(message):
        committed = await su.fetchval("SELECT count(*) FROM invite WHERE email = $1 AND last_sent_at IS NULL", message.to)
        sent.append((message.to, committed))

    monkeypatch.setattr(mail, "send", recording_send)
    org = await make_org()
    owner = SimpleNamespace(id=org.owner.id, email=org.owner.email, name=org.owner.name)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.transaction(user_id=owner.id):
            ctx = await resolve(org.slug, owner, Perm.MANAGE_MEMBERS, lock=True)
            delivery.schedule(await service.create_invite(ctx, "rolled-back@example.test", "member"))
            await asyncio.sleep(0.3)
            assert sent == []  # waiting for this transaction
            raise Abort
    await background.drain()
    assert sent == []  # rolled back: nothing to send

    async with db.transaction(user_id=owner.id):
        ctx = await resolve(org.slug, owner, Perm.MANAGE_MEMBERS, lock=True)
        delivery.schedule(await service.create_invite(ctx, "committed@example.test", "member"))
        await asyncio.sleep(0.3)
        assert sent == []
    await background.drain()
    assert sent == [("committed@example.test", 1)]  # visible to another connection: committed
