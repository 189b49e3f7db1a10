"""`make run` smoke: `portal dev` creates the embedded cluster, migrates, loads the demo and serves;
Ctrl-C stops it cleanly; a second start reuses the cluster and the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from portal.devdb import free_port, wait_for_port
from portal.demo import DEMO_OWNER, DEMO_PASSWORD


def start(data_dir: Path, port: int, pg_port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRATE_DATABASE_URL", "SECRET_KEY")}
    env.update(PORTAL_DATA_DIR=str(data_dir), PORTAL_PG_PORT=str(pg_port))
    return subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "dev", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


def test_portal_dev_boots_serves_and_restarts(tmp_path_factory):
    data_dir = Path(tempfile.mkdtemp(prefix="portal-run-"))
    os.chmod(data_dir, 0o755)
    port, pg_port = free_port(), free_port()
    proc = start(data_dir, port, pg_port)
    try:
        wait_for_port(port, timeout=90)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as http:
            assert http.get("/healthz").text == "ok"
            login = http.get("/login")
            assert login.status_code == 200 and "Sign in" in login.text
            r = http.post("/login", data={"email": DEMO_OWNER[0], "password": DEMO_PASSWORD, "_csrf_token": http.cookies["portal_csrf"]})
            assert r.status_code == 303
            dash = http.get("/orgs/acme")
            assert dash.status_code == 200 and "Acme AI" in dash.text
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "embedded PostgreSQL stopped" in out and f"Sign in as {DEMO_OWNER[0]}" in out

    proc = start(data_dir, port, pg_port)
    try:
        wait_for_port(port, timeout=90)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
    finally:
        out = stop(proc)
    assert "reusing the embedded PostgreSQL cluster" in out and "already present" in out
    subprocess.run(["rm", "-rf", str(data_dir)], check=False)
