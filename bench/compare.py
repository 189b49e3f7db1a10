"""`python -m bench.compare [REF]`: every page of this tree against an earlier tree, in one run.

A refactor must not make a page slower. Absolute figures drift on a shared machine, so both trees
serve the same seeded database at the same time (uvicorn, one worker each), and each page is
measured on one and then the other, alternating, twice; the best round of each counts. The SQL
statements each page sends are counted in each tree too. Writes a marked section of
bench/results.md (part of `make bench`).

REF defaults to ``BASELINE``: the tree before issue 14 (one resource layer, named routes).
``BENCH_COMPARE_PAGES=agents,connections`` measures just those pages; ``BENCH_COMPARE_SECONDS``
sets the length of a round (3 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import load
from bench.run import CONNECTIONS, ROOT, log, make_session, serve, side_by_side, stop, write_section
from bench.seed import LARGE, seed
from portal.devdb import free_port

BASELINE = "8be2fef"
SECONDS = int(os.environ.get("BENCH_COMPARE_SECONDS", "3"))
ROUNDS = 2
SECTION_START, SECTION_END = "<!-- before-after -->", "<!-- /before-after -->"

# Counted in each tree's own process, with that tree's recorder and app.
_COUNT = r"""
import asyncio, json, os, sys
import httpx
from bench import recorder
from portal.app import create_app
from portal.config import load_settings, set_settings
from portal.db import engine as db

async def main(pages):
    set_settings(load_settings())
    db.bind(os.environ["DATABASE_URL"])
    await db.start_pool(2)
    out = {}
    try:
        app = create_app(manage_pool=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for name, (path, cookie) in pages.items():
                await client.get(path, headers={"Cookie": cookie})
                with recorder.recording() as rec:
                    r = await client.get(path, headers={"Cookie": cookie})
                out[name] = len(rec.statements) if r.status_code == 200 else f"HTTP {r.status_code}"
    finally:
        await db.close_pool()
    print("COUNTS " + json.dumps(out))

asyncio.run(main(json.loads(sys.argv[1])))
"""


async def _ids(su, slug: str) -> dict[str, str]:
    """One of each resource in the org (connections and teams are added: the seed has none)."""
    org = await su.fetchval("SELECT id FROM organization WHERE slug = $1", slug)
    await su.execute(
        """INSERT INTO connection (org_id, name, kind, config)
           SELECT $1, 'Bench connection ' || i, 'webhook', '{"url": "https://hooks.example.test/x"}' FROM generate_series(1, 50) i""",
        org,
    )
    await su.execute("INSERT INTO team (org_id, name) SELECT $1, 'Bench team ' || i FROM generate_series(1, 50) i", org)
    team = await su.fetchval("SELECT id FROM team WHERE org_id = $1 ORDER BY name LIMIT 1", org)
    await su.execute(
        "INSERT INTO team_member (org_id, team_id, membership_id) SELECT $1, $2, id FROM membership WHERE org_id = $1 LIMIT 200",
        org, team,
    )

    async def first(table: str) -> str:
        return str(await su.fetchval(f"SELECT id FROM {table} WHERE org_id = $1 ORDER BY lower(name), id LIMIT 1", org))

    return {"agent": await first("agent"), "workflow": await first("workflow"), "connection": await first("connection"), "team": team}


def pages_for(slug: str, ids: dict[str, str]) -> dict[str, str]:
    base = f"/orgs/{slug}"
    return {
        "dashboard": base,
        "members": f"{base}/members",
        "invites": f"{base}/invites",
        "audit": f"{base}/audit",
        "billing": f"{base}/billing",
        "agents": f"{base}/agents",
        "agents ?q=&page=3": f"{base}/agents?q=agent&page=3",
        "agent": f"{base}/agents/{ids['agent']}",
        "new agent form": f"{base}/agents/new",
        "workflows": f"{base}/workflows",
        "workflow": f"{base}/workflows/{ids['workflow']}",
        "workflow edit form": f"{base}/workflows/{ids['workflow']}/edit",
        "connections": f"{base}/connections",
        "connection": f"{base}/connections/{ids['connection']}",
        "teams": f"{base}/teams",
        "team": f"{base}/teams/{ids['team']}",
    }


def _worktree(ref: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="portal-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT, check=True, capture_output=True)
    return path


def _tree_env(env: dict, tree: Path) -> dict:
    return {**env, "PYTHONPATH": str(tree)}


def _counts(env: dict, tree: Path, pages: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _COUNT, json.dumps(pages)], cwd=tree, env=_tree_env(env, tree), capture_output=True, text=True
    )
    line = next((l for l in out.stdout.splitlines() if l.startswith("COUNTS ")), None)
    if line is None:
        raise RuntimeError(f"counting statements in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("COUNTS "):])


def _best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["rps"])


async def main() -> None:
    from tests.pg import TestDatabase

    if not load.have_wrk():
        sys.exit("bench: wrk is needed (Debian: apt-get install -y wrk); `make bench` installs it")
    ref = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    label = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    here = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    tree = _worktree(ref)
    tdb = TestDatabase()
    procs = []
    try:
        await tdb.start()
        tdb.migrate()
        env = {**os.environ, **tdb.env(), "DB_POOL_SIZE": "10"}
        su = await tdb.cluster.superuser_connect()
        log("seeding")
        await seed(su)
        cookie = await make_session(su, LARGE)
        paths = pages_for(LARGE, await _ids(su, LARGE))
        await su.close()
        only = [p.strip() for p in os.environ.get("BENCH_COMPARE_PAGES", "").split(",") if p.strip()]
        pages = {name: (path, cookie) for name, path in paths.items() if not only or name in only}

        log("counting SQL statements per page in both trees")
        counts = {"before": _counts(env, tree, pages), "after": _counts(env, ROOT, pages)}

        servers = {}
        for side, cwd in (("before", tree), ("after", ROOT)):
            port = free_port()
            procs.append(serve([sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "1",
                                "--server", "uvicorn"], _tree_env(env, cwd), port, cwd=cwd))
            servers[side] = f"http://127.0.0.1:{port}"
        runs: dict[str, dict[str, list]] = {"before": {}, "after": {}}
        for name, (path, _) in pages.items():
            for side in ("before", "after"):
                load.run(servers[side] + path, cookie, seconds=1, connections=CONNECTIONS)  # warm-up
            for _ in range(ROUNDS):
                for side in ("before", "after"):
                    runs[side].setdefault(name, []).append(
                        load.run(servers[side] + path, cookie, seconds=SECONDS, connections=CONNECTIONS)
                    )
            b, a = _best(runs["before"][name]), _best(runs["after"][name])
            log(f"  {name:22s} before {b['rps']:7.1f} req/s  after {a['rps']:7.1f} req/s  ({a['rps'] / b['rps']:.2f})")
    finally:
        for proc in procs:
            stop(proc)
        tdb.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    write_section(SECTION_START, SECTION_END, render(label, here, pages, runs, counts))
    log("wrote the before/after section of bench/results.md")


def render(label: str, here: str, pages: dict, runs: dict, counts: dict) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION_START,
        f"## Every page before and after issue 14 (same run, {stamp})",
        "",
        f"`python -m bench.compare`: the tree at `{label}` and this tree (`{here}`) serve the same seeded database"
        f" side by side (uvicorn, 1 worker each), 10,000-member org; each page {ROUNDS} × {SECONDS} s per tree,"
        " alternating, best round; statements counted in each tree's own process. Ratio = after ÷ before (≥ 1.00 is"
        " no slower; differences within ±5 % are noise on this machine).",
        "",
    ]
    lines += side_by_side("before", "after", [
        (name, _best(runs["before"][name]), _best(runs["after"][name]), f"{counts['before'][name]} → {counts['after'][name]}")
        for name in pages
    ], "before → after")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main())
    log(f"done in {time.perf_counter() - started:.0f} s")
