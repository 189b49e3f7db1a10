"""`portal serve` as a real OS process on the suite's database, for tests that need real sockets
(slow clients, several processes, a small pool under load, the servers' own logging)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from portal.devdb import free_port, wait_for_port

# Settings a developer's shell may carry that would change what a test server does.
_UNINHERITED = ("FORWARDED_ALLOW_IPS", "PORTAL_ACCESS_LOG")


class Server(str):
    """The base URL of a running ``portal serve``; ``.process`` is its OS process."""

    process: subprocess.Popen


@contextmanager
def portal_server(database, log_name: str, *, server: str = "uvicorn", args: tuple[str, ...] = (), **env: str) -> Iterator[Server]:
    """Serve the portal on a free loopback port with ``env`` on top of the suite's settings;
    yields its base URL (with ``.process``, for a test that kills it). Stopped with SIGINT (a
    clean shutdown flushes its log); the log lands beside the test cluster (``server_log``)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k not in _UNINHERITED}
    full_env.update(database.env(), BASE_URL=f"http://127.0.0.1:{port}", **env)
    log_path: Path = database.root / log_name
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--server", server, *args],
            env=full_env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=60)
            url = Server(f"http://127.0.0.1:{port}")
            url.process = proc
            yield url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def server_log(database, log_name: str) -> str:
    return (database.root / log_name).read_text(errors="replace")
