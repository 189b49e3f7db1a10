"""`portal serve` under uvicorn and under granian: the same access log (secret links redacted,
the server's own off) and the same trusted proxy headers (the forwarded client is the client for
rate limits, but only from a `FORWARDED_ALLOW_IPS` peer). Real servers, real requests."""

from __future__ import annotations

import secrets
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from portal.web.logredact import redact
from tests.servers import portal_server, server_log

SERVERS = ["uvicorn", "granian"]
CLIENT = "203.0.113.7"  # TEST-NET-3: never a real peer of this machine


class Served:
    url = ""
    log = ""


@contextmanager
def serve(database, tmp_path: Path, server: str, *, workers: int = 1, access_log: bool = True, **env_extra: str):
    """`portal serve`; its log is read once the server has stopped."""
    served = Served()
    args = ("--workers", str(workers), *(["--access-log"] if access_log else []))
    name = f"serve-{server}-{tmp_path.name}.log"
    with portal_server(database, name, server=server, args=args, DB_POOL_SIZE="2", **env_extra) as url:
        served.url = url
        yield served
    served.log = server_log(database, name)


async def hits(su, ip: str, since: datetime) -> int:
    """Invite-page rate-limit hits counted for ``ip`` since ``since`` (real time: the server's
    clock; rows of earlier tests may carry other times, and a hit sweeps the bucket's old rows)."""
    return await su.fetchval(
        "SELECT count(*) FROM rate_hit WHERE bucket = $1 AND at BETWEEN $2 AND now()", f"invite:{ip}", since
    )


async def real_now(su) -> datetime:
    return await su.fetchval("SELECT clock_timestamp()")


@pytest.mark.parametrize("server", SERVERS)
async def test_access_log_redacts_links_and_names_the_forwarded_client(server, database, su, tmp_path):
    token = secrets.token_urlsafe(32)
    since = await real_now(su)
    with serve(database, tmp_path, server, workers=2) as served:  # the setup must reach worker processes
        async with httpx.AsyncClient(base_url=served.url, headers={"X-Forwarded-For": CLIENT}, timeout=30) as http:
            assert (await http.get(f"/invites/{token}")).status_code == 404
            assert (await http.get(f"/login?next=/invites/{token}")).status_code == 200
            assert (await http.get(f"/login?next=%2Finv%69tes%2F{token}")).status_code == 200
    log = served.log
    assert token not in log, log
    assert f'{CLIENT} - "GET /invites/[redacted] HTTP/1.1" 404' in log, log
    assert f'{CLIENT} - "GET /login?next=/invites/[redacted] HTTP/1.1" 200' in log, log
    assert f'{CLIENT} - "GET /login?next=%2Finvites%2F[redacted] HTTP/1.1" 200' in log, log
    # one access log: the server's own would repeat the line (with the proxy's address)
    assert log.count('"GET /invites/[redacted] HTTP/1.1"') == 1, log
    # the rate limit counted the forwarded client, not the proxy
    assert await hits(su, CLIENT, since) == 1
    assert await hits(su, "127.0.0.1", since) == 0


@pytest.mark.parametrize("server", SERVERS)
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(server, database, su, tmp_path):
    forged = "198.51.100.23"
    since = await real_now(su)
    with serve(database, tmp_path, server, access_log=False, FORWARDED_ALLOW_IPS="192.0.2.1") as served:
        async with httpx.AsyncClient(base_url=served.url, headers={"X-Forwarded-For": forged}, timeout=30) as http:
            assert (await http.get(f"/invites/{secrets.token_urlsafe(32)}")).status_code == 404
    assert await hits(su, forged, since) == 0
    assert await hits(su, "127.0.0.1", since) == 1
    assert '"GET /invites/' not in served.log, served.log  # no access log without --access-log


def test_redaction_sees_through_escaped_letters():
    token = secrets.token_urlsafe(32)
    assert redact(f"/inv%69tes/{token}") == "/invites/[redacted]"
    assert redact(f"/login?next=%2F%72eset-password%2F{token}") == "/login?next=%2Freset-password%2F[redacted]"
    assert redact("/static/a%41b.css?x=%2F") == "/static/a%41b.css?x=%2F"  # untouched when nothing is secret


def test_every_handler_redacts_after_configure():
    """In a fresh interpreter: configuring logging here would change the test run's own."""
    script = """
import logging
from portal import logs
from portal.web.logredact import RedactSecretLinks
stray = logging.StreamHandler()
logging.getLogger("some.library").addHandler(stray)  # outside the configuration
logs.configure(access_log=True)
handlers = [*logging.getLogger().handlers, stray]
assert len(handlers) == 2, handlers
assert all(any(isinstance(f, RedactSecretLinks) for f in h.filters) for h in handlers)
assert logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.INFO)
assert not logging.getLogger("uvicorn.access").handlers and not logging.getLogger("granian.access").handlers
logs.configure(access_log=False)
assert not logging.getLogger(logs.ACCESS_LOGGER).isEnabledFor(logging.INFO)
logging.getLogger("portal.invites").info("link /invites/%s", "SECRET-TOKEN-123")
try:
    raise ValueError("bad /reset-password/SECRET-TOKEN-456")
except ValueError:
    logging.getLogger("portal").exception("failed")
logging.getLogger("portal.mail.outbox").info("its link: %s", "http://x/invites/DEV-LINK-789")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "link /invites/[redacted]" in result.stderr and "SECRET-TOKEN-123" not in result.stderr
    assert "bad /reset-password/[redacted]" in result.stderr and "SECRET-TOKEN-456" not in result.stderr
    assert "DEV-LINK-789" in result.stderr  # the outbox prints its links on purpose (development)


def test_several_workers_default_to_granian(monkeypatch):
    """granian spreads kept-alive connections over its workers; uvicorn's may all land on one."""
    import granian
    import uvicorn

    from portal import cli

    chosen = []
    monkeypatch.setattr(cli, "_settings", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: chosen.append("uvicorn"))
    monkeypatch.setattr(granian.Granian, "serve", lambda self, *a, **k: chosen.append("granian"))
    for argv in (["serve"], ["serve", "--workers", "2"], ["serve", "--workers", "2", "--server", "uvicorn"], ["serve", "--server", "granian"]):
        cli.main(argv)
    assert chosen == ["uvicorn", "granian", "uvicorn", "granian"]
