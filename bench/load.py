"""Load generation with wrk (a separate C process, so the load generator costs little CPU)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

LUA = r"""
wrk.method = "GET"
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE") or ""
local auth = os.getenv("BENCH_AUTHORIZATION")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, cookie: str, *, seconds: int, connections: int, threads: int = 1, authorization: str = "") -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
        script = f.name
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url],
            capture_output=True, text=True, check=True, env={"BENCH_COOKIE": cookie, "BENCH_AUTHORIZATION": authorization, "PATH": "/usr/bin:/bin"},
        ).stdout
    finally:
        Path(script).unlink(missing_ok=True)
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result
