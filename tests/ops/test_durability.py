"""Nothing lost across a crash (SECURITY 45): a mail committed with its change survives the death
of the process that was to send it, and arrives once."""

from __future__ import annotations

import asyncio
import re
import signal
import uuid

import httpx

from tests.factories import unique
from tests.mail_sink import SmtpSink, cancel_leftover_mail, link_in
from tests.servers import portal_server


def _csrf_of(html: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)


async def test_an_invite_committed_right_before_a_sigkill_is_mailed_once_after_the_restart(database, su, make_org):
    """Process A commits an invite and dies (SIGKILL) before any worker has sent its mail — A runs
    none, so the kill surely lands between commit and send. Process B, started afterwards, finds
    the mail in the outbox and sends it: exactly one message, whose link works."""
    from portal.accounts.sessions import COOKIE, token_hash

    org = await make_org()
    token = uuid.uuid4().hex + uuid.uuid4().hex
    await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), org.owner.id)
    email = f"{unique('crash')}@example.test"
    await cancel_leftover_mail(database)
    sink = SmtpSink().start()
    try:
        with portal_server(database, "crash-a.log", RUN_WORKERS="0", SMTP_URL=sink.url()) as a:
            async with httpx.AsyncClient(base_url=a, cookies={COOKIE: token}) as c:
                csrf = _csrf_of((await c.get(f"/orgs/{org.slug}/invites")).text)
                r = await c.post(f"/orgs/{org.slug}/invites", data={"email": email, "role": "member", "_csrf_token": csrf})
                assert r.status_code == 303, r.text[:500]
            a.process.send_signal(signal.SIGKILL)
            assert a.process.wait(timeout=10) == -signal.SIGKILL
        queued = await su.fetchrow("SELECT id, status FROM mail_outbox WHERE org_id = $1 AND recipient = $2", org.id, email)
        assert queued["status"] == "queued" and sink.messages == []

        with portal_server(database, "crash-b.log", SMTP_URL=sink.url()) as b:
            [message] = await sink.wait_for(1, timeout=30)
            await asyncio.sleep(3)  # three of the worker's polls: no second copy
            assert [m["To"] for m in sink.messages] == [email]
            assert message["Message-ID"].startswith(f"<{queued['id']}@")
            async with httpx.AsyncClient(base_url=b) as anonymous:
                path = link_in(message, re.compile(r"https?://[^/]+(/invites/[A-Za-z0-9_-]{43})"))
                assert (await anonymous.get(path)).status_code == 200
    finally:
        sink.stop()
    done = await su.fetchrow("SELECT status, attempts, payload FROM mail_outbox WHERE id = $1", queued["id"])
    assert (done["status"], done["attempts"], done["payload"]) == ("sent", 1, None)
    assert await su.fetchval("SELECT last_sent_at IS NOT NULL FROM invite WHERE org_id = $1 AND email = $2", org.id, email)
