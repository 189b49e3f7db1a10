"""Secret links never reach the logs: the redaction filter, and `portal serve --access-log` live."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys

import httpx

from portal.accounts import reset
from portal.devdb import free_port, wait_for_port
from portal.logs import logging_config
from portal.web.logredact import RedactSecretLinks, redact

TOKEN = secrets.token_urlsafe(32)


def test_redaction_rules():
    uuid = "123e4567-e89b-12d3-a456-426614174000"
    assert redact(f"GET /invites/{TOKEN} HTTP/1.1") == "GET /invites/[redacted] HTTP/1.1"
    assert redact(f"/invites/{TOKEN}/accept") == "/invites/[redacted]/accept"
    assert redact(f"/login?next=%2Finvites%2F{TOKEN}&email=a%40b") == "/login?next=%2Finvites%2F[redacted]&email=a%40b"
    assert redact(f"/login?next=/invites/{TOKEN}") == "/login?next=/invites/[redacted]"
    assert redact("/reset-password/eyJ1IjoiIn0.Z2k.sig-_") == "/reset-password/[redacted]"
    # org page ids are not secrets
    assert redact(f"/orgs/acme/invites/{uuid}/resend") == f"/orgs/acme/invites/{uuid}/resend"
    assert redact(f"/invites/{uuid}{TOKEN[:7]}") == "/invites/[redacted]"


def test_filter_rewrites_uvicorn_access_records():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5000", "GET", f"/invites/{TOKEN}", "1.1", 404), None,
    )
    assert RedactSecretLinks().filter(record) is True
    assert TOKEN not in record.getMessage() and "/invites/[redacted]" in record.getMessage()
    assert record.args[4] == 404  # the status stays an int for uvicorn's formatter
    config = logging_config()
    assert all("redact_secret_links" in h["filters"] for h in config["handlers"].values())


async def test_portal_serve_access_log_redacts_links(database, make_invite, make_org, make_user):
    org = await make_org()
    invitee = await make_user()
    live, _ = await make_invite(org, invitee.email)
    dead = secrets.token_urlsafe(32)
    reset_token = reset.make_token(invitee.id, "some-password-hash")
    port = free_port()
    env = {**os.environ, **database.env()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_port(port, timeout=30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get(f"/invites/{live}")).status_code == 200
            assert (await http.get(f"/invites/{dead}")).status_code == 404
            assert (await http.get("/login", params={"next": f"/invites/{live}", "email": invitee.email})).status_code == 200
            assert (await http.get(f"/reset-password/{reset_token}")).status_code == 404
            assert (await http.post(f"/invites/{live}/accept")).status_code in (303, 403)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "GET /invites/[redacted] HTTP/1.1" in out, out
    assert "next=%2Finvites%2F[redacted]" in out, out
    assert "/reset-password/[redacted]" in out
    for secret in (live, dead, reset_token):
        assert secret not in out
