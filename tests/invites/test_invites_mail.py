"""The mail module and the outbox: SMTP_URL forms, TLS and authentication against a real server,
retries with backoff, dead letters and their retry, a lease that outlives its sender, and mail
that leaves only after the invite has committed."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import timedelta
from types import SimpleNamespace

import pytest

from portal import clock, mail
from portal.devdb import free_port
from portal.mail import queue as mail_queue
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


async def test_smtp_down_the_invite_waits_in_the_outbox_and_arrives_once_it_is_back(app, make_org, client_for, su):
    """Each failed attempt waits twice as long as the one before; the owner sees "Retrying" and
    why; when the server is back the one mail arrives, with the Message-ID it had all along."""
    org = await make_org()
    owner = await client_for(org.owner)
    port = free_port()  # nothing listens here yet
    with mail_settings(smtp_url=f"smtp://127.0.0.1:{port}", mail_retry_base=timedelta(seconds=30)):
        await send_invite(owner, org, "patient@example.test")  # attempt 1 fails
        body = text_of(await owner.get(f"/orgs/{org.slug}/invites"))
        assert f"Retrying Attempt 1 failed: could not reach the mail server at 127.0.0.1:{port}." in body
        queued = await su.fetchrow("SELECT id, status, attempts, run_after, created_at FROM mail_outbox WHERE org_id = $1", org.id)
        assert (queued["status"], queued["attempts"]) == ("queued", 1)
        assert timedelta(seconds=29) < queued["run_after"] - queued["created_at"] < timedelta(seconds=40)
        await mail_queue.drain()  # not due yet: no attempt
        assert await su.fetchval("SELECT attempts FROM mail_outbox WHERE id = $1", queued["id"]) == 1
        clock.advance(timedelta(seconds=31))
        await mail_queue.drain()  # attempt 2 fails: the next waits 60 s
        second = await su.fetchrow("SELECT attempts, run_after FROM mail_outbox WHERE id = $1", queued["id"])
        assert second["attempts"] == 2 and second["run_after"] - clock.now() > timedelta(seconds=55)

        sink = SmtpSink(port=port).start()
        try:
            clock.advance(timedelta(seconds=61))
            await mail_queue.drain()
            [message] = await sink.wait_for(1)
            await mail_queue.drain()
            assert len(sink.messages) == 1
        finally:
            sink.stop()
    assert message["Message-ID"].startswith(f"<{queued['id']}@")
    assert (await Client(app).get(link_in(message))).status_code == 200
    listing = text_of(await owner.get(f"/orgs/{org.slug}/invites"))
    assert "Retrying" not in listing and "Not delivered" not in listing and "could not be emailed" not in listing
    row = await su.fetchrow("SELECT status, payload, sent_at FROM mail_outbox WHERE id = $1", queued["id"])
    assert row["status"] == "sent" and row["payload"] is None and row["sent_at"] is not None
    assert await su.fetchval("SELECT count(*) FROM invite WHERE org_id = $1 AND send_error IS NULL AND last_sent_at IS NOT NULL", org.id) == 1


async def test_a_refused_address_is_dead_lettered_and_the_owner_can_retry(app, make_org, client_for, su, smtp_sink):
    org = await make_org()
    owner = await client_for(org.owner)
    smtp_sink.refuse.add("nobody@example.test")
    await send_invite(owner, org, "nobody@example.test")  # refused for good: no second attempt
    mail_row = await su.fetchrow("SELECT id, status, attempts, last_error, payload FROM mail_outbox WHERE org_id = $1", org.id)
    assert (mail_row["status"], mail_row["attempts"]) == ("dead", 1) and mail_row["payload"] is not None
    assert "refused the recipient address (550)" in mail_row["last_error"]
    listing = await owner.get(f"/orgs/{org.slug}/invites")
    body = text_of(listing)
    assert "Some invites could not be emailed" in body
    assert "Not delivered The mail server refused the recipient address (550). Retry sends the same link again" in body
    invite_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    assert await su.fetchval("SELECT send_error FROM invite WHERE id = $1", invite_id) == mail_row["last_error"]

    smtp_sink.refuse.clear()  # the mailbox exists now
    r = await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/retry-mail", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Sending" in r.text
    await mail_queue.drain()
    [message] = await smtp_sink.wait_for(1)
    assert message["Message-ID"].startswith(f"<{mail_row['id']}@")
    assert (await Client(app).get(link_in(message))).status_code == 200
    assert "Not delivered" not in text_of(await owner.get(f"/orgs/{org.slug}/invites"))
    again = await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/retry-mail")  # nothing undelivered now
    assert again.status_code == 409


async def test_an_expired_invite_s_dead_letter_offers_resend_not_retry(app, make_org, client_for, su, smtp_sink):
    """Retry sends the same link: for an invite that has expired meanwhile that link is dead, so
    the page offers only Resend and a retry posted anyway is refused, sending nothing."""
    org = await make_org()
    owner = await client_for(org.owner)
    smtp_sink.refuse.add("late@example.test")
    await send_invite(owner, org, "late@example.test")
    invite_id = await su.fetchval("SELECT id FROM invite WHERE org_id = $1", org.id)
    await su.execute("UPDATE invite SET created_at = now() - interval '8 days', expires_at = now() - interval '1 day' WHERE id = $1", invite_id)
    body = text_of(await owner.get(f"/orgs/{org.slug}/invites"))
    assert "Not delivered" in body and "Resend to try again" in body and "Retry the email to late@example.test" not in body
    smtp_sink.refuse.clear()
    r = await owner.post(f"/orgs/{org.slug}/invites/{invite_id}/retry-mail")
    assert r.status_code == 409 and "expired" in text_of(r)
    assert await su.fetchval("SELECT status FROM mail_outbox WHERE org_id = $1", org.id) == "dead"


async def test_after_the_last_attempt_the_mail_is_dead(app, make_org, client_for, su):
    org = await make_org()
    owner = await client_for(org.owner)
    with mail_settings(smtp_url=f"smtp://127.0.0.1:{free_port()}", mail_max_attempts=2, mail_retry_base=timedelta(seconds=1)):
        await send_invite(owner, org, "gone@example.test")
        clock.advance(timedelta(seconds=2))
        await mail_queue.drain()
    row = await su.fetchrow("SELECT status, attempts FROM mail_outbox WHERE org_id = $1", org.id)
    assert (row["status"], row["attempts"]) == ("dead", 2)
    assert "Not delivered Could not reach the mail server" in text_of(await owner.get(f"/orgs/{org.slug}/invites"))


async def test_mail_leaves_only_after_the_invite_commits(app, make_org, su, monkeypatch):
    """The mail is a row of the invite's transaction: a worker sees nothing while it is open,
    nothing at all if it rolls back, and the invite is durable when the mail goes out."""
    from portal.db import engine as db
    from portal.invites import service
    from portal.tenancy.context import resolve
    from portal.tenancy.permissions import Perm

    sent: list[tuple[str, int]] = []

    async def recording_send(message, *, message_id=None):
        committed = await su.fetchval("SELECT count(*) FROM invite WHERE email = $1", message.to)
        sent.append((message.to, committed))

    monkeypatch.setattr(mail, "send", recording_send)
    org = await make_org()
    owner = SimpleNamespace(id=org.owner.id, email=org.owner.email, name=org.owner.name)

    async def worker_meanwhile():  # another task (its own connection), as another process's worker
        await asyncio.create_task(mail_queue.drain(), context=contextvars.Context())

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.transaction(user_id=owner.id):
            ctx = await resolve(org.slug, owner, Perm.MANAGE_MEMBERS, lock=True)
            await service.create_invite(ctx, "rolled-back@example.test", "member")
            await worker_meanwhile()
            assert sent == []  # not committed: invisible to the worker
            raise Abort
    await mail_queue.drain()
    assert sent == []  # rolled back: nothing to send
    assert await su.fetchval("SELECT count(*) FROM mail_outbox WHERE recipient = 'rolled-back@example.test'") == 0

    async with db.transaction(user_id=owner.id):
        ctx = await resolve(org.slug, owner, Perm.MANAGE_MEMBERS, lock=True)
        await service.create_invite(ctx, "committed@example.test", "member")
        await worker_meanwhile()
        assert sent == []
    await mail_queue.drain()
    assert sent == [("committed@example.test", 1)]  # visible to another connection: committed


async def test_a_sender_that_died_mid_send_is_replaced_with_the_same_message(app, make_org, client_for, su, smtp_sink):
    """A worker claimed the mail and died before recording the outcome: once its lease runs out
    another worker sends it, with the same Message-ID (a mailbox shows one message)."""
    org = await make_org()
    owner = await client_for(org.owner)
    r = await owner.post(f"/orgs/{org.slug}/invites", {"email": "lease@example.test", "role": "member"})
    assert r.status_code == 303
    mail_id = await su.fetchval("SELECT id FROM mail_outbox WHERE org_id = $1", org.id)
    claim = await mail_queue._claim(mail_id, org.id)  # claimed by a worker that then vanishes
    assert claim is not None and claim.attempt == 1
    await mail_queue.drain()
    assert smtp_sink.messages == []  # its lease holds
    clock.advance(mail_queue.LEASE + timedelta(seconds=1))
    await mail_queue.drain()
    [message] = await smtp_sink.wait_for(1)
    assert message["Message-ID"] == f"<{mail_id}@praesidia.localhost>"
    assert await su.fetchval("SELECT attempts FROM mail_outbox WHERE id = $1", mail_id) == 2


async def test_revoking_or_replacing_an_invite_drops_its_unsent_mail(app, make_org, client_for, su, smtp_sink):
    org = await make_org()
    owner = await client_for(org.owner)
    for email in ("revoked@example.test", "replaced@example.test"):
        assert (await owner.post(f"/orgs/{org.slug}/invites", {"email": email, "role": "member"})).status_code == 303
    revoked, replaced = [await su.fetchval("SELECT id FROM invite WHERE org_id = $1 AND email = $2", org.id, e)
                         for e in ("revoked@example.test", "replaced@example.test")]
    assert (await owner.post(f"/orgs/{org.slug}/invites/{revoked}/revoke")).status_code == 303
    assert (await owner.post(f"/orgs/{org.slug}/invites/{replaced}/resend")).status_code == 303
    rows = await su.fetch("SELECT ref_id, status, payload IS NULL AS wiped FROM mail_outbox WHERE org_id = $1", org.id)
    assert {(r["ref_id"], r["status"], r["wiped"]) for r in rows if r["ref_id"] in (revoked, replaced)} == {
        (revoked, "cancelled", True), (replaced, "cancelled", True)}
    await mail_queue.drain()
    [message] = await smtp_sink.wait_for(1)  # the replacement's mail alone
    assert message["To"] == "replaced@example.test"
    new_id = await su.fetchval("SELECT replaced_by FROM invite WHERE id = $1", replaced)
    assert message["Message-ID"].startswith(f"<{await su.fetchval('SELECT id FROM mail_outbox WHERE ref_id = $1', new_id)}@")


async def test_the_mail_worker_mode_reads_the_queue_deletes_only_finished_mail_and_nothing_else(database, make_org, client_for, su, smtp_sink):
    """``app.mail_worker``, the one cross-org way into ``mail_outbox`` (the worker's discovery and
    purge, the metrics' counts): as the app role with no org, it reads the queue, may delete only
    finished mail, changes none, opens no other tenant table, and ends with its transaction."""
    import asyncpg

    org = await make_org()
    owner = await client_for(org.owner)
    smtp_sink.refuse.update({"first@example.test", "second@example.test"})
    for address in ("first@example.test", "second@example.test"):
        await send_invite(owner, org, address)
    dead, waiting = [r["id"] for r in await su.fetch("SELECT id FROM mail_outbox WHERE org_id = $1 ORDER BY recipient", org.id)]
    await su.execute("UPDATE mail_outbox SET status = 'queued', run_after = now() + interval '1 hour' WHERE id = $1", waiting)
    conn = await asyncpg.connect(database.app_url)  # the app role, no org set
    try:
        assert await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE org_id = $1", org.id) == 0
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.mail_worker', 'on', true)")
            assert await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE org_id = $1", org.id) == 2
            assert await conn.fetchval("SELECT count(*) FROM invite WHERE org_id = $1", org.id) == 0
            assert await conn.execute("UPDATE mail_outbox SET status = 'cancelled' WHERE org_id = $1", org.id) == "UPDATE 0"
            assert await conn.execute("DELETE FROM mail_outbox WHERE id = $1", waiting) == "DELETE 0"
            assert await conn.execute("DELETE FROM mail_outbox WHERE id = $1", dead) == "DELETE 1"
        assert await conn.fetchval("SELECT count(*) FROM mail_outbox WHERE org_id = $1", org.id) == 0  # gone with the transaction
    finally:
        await conn.close()
    assert [r["status"] for r in await su.fetch("SELECT status FROM mail_outbox WHERE org_id = $1", org.id)] == ["queued"]
