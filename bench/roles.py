"""`python -m bench.roles`: a custom role costs what a built-in role costs (issue 15).

Two people of the 10,000-member org: one holds the built-in role ``member``, the other a custom
role with exactly the member's permissions. Both load the members page and an org page (agents)
from one `portal serve` (uvicorn, 1 worker), alternating, best of ``ROUNDS`` rounds; the SQL
statements of each page are counted in-process for each of them. Writes a marked section of
bench/results.md (part of `make bench`). Target: no more statements, throughput within 5 %.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from datetime import datetime, timezone

from bench import load
from bench.run import CONNECTIONS, log, serve, side_by_side, statements_per_request, stop, write_section
from bench.seed import LARGE, seed
from portal.devdb import free_port

SECONDS = int(os.environ.get("BENCH_COMPARE_SECONDS", "3"))
ROUNDS = 3
SECTION_START, SECTION_END = "<!-- custom-roles -->", "<!-- /custom-roles -->"
PAGES = {"members": "/members", "agents": "/agents", "dashboard": ""}


async def _holders(su) -> dict[str, str]:
    """Session cookies of a built-in ``member`` and of a holder of an equal custom role."""
    from portal.accounts.sessions import token_hash

    org = await su.fetchval("SELECT id FROM organization WHERE slug = $1", LARGE)
    role = await su.fetchval(
        "INSERT INTO org_role (org_id, name, permissions) VALUES ($1, 'Member, custom', '{resources.manage,org.leave}') RETURNING id",
        org,
    )
    people = await su.fetch(
        "SELECT id, user_id FROM membership WHERE org_id = $1 AND role = 'member' ORDER BY created_at LIMIT 2", org
    )
    await su.execute("UPDATE membership SET role = 'custom', custom_role_id = $2 WHERE id = $1", people[1]["id"], role)
    cookies = {}
    for who, person in zip(("built-in member", "custom role"), people):
        token = secrets.token_urlsafe(32)
        await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), person["user_id"])
        cookies[who] = f"portal_session={token}"
    return cookies


async def main() -> None:
    from tests.pg import TestDatabase

    if not load.have_wrk():
        sys.exit("bench: wrk is needed (Debian: apt-get install -y wrk); `make bench` installs it")
    tdb = TestDatabase()
    proc = None
    results: dict[tuple[str, str], dict] = {}
    try:
        await tdb.start()
        tdb.migrate()
        env = {**os.environ, **tdb.env(), "DB_POOL_SIZE": "10"}
        su = await tdb.cluster.superuser_connect()
        log("seeding")
        await seed(su)
        cookies = await _holders(su)
        await su.close()
        cases = {(page, who): (f"/orgs/{LARGE}{path}", cookie) for page, path in PAGES.items() for who, cookie in cookies.items()}
        counts = await statements_per_request(env, {f"{p}|{w}": v for (p, w), v in cases.items()})
        port = free_port()
        proc = serve([sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "1", "--server", "uvicorn"], env, port)
        base = f"http://127.0.0.1:{port}"
        for page in PAGES:
            for who in cookies:
                path, cookie = cases[(page, who)]
                load.run(base + path, cookie, seconds=1, connections=CONNECTIONS)  # warm-up
            for _ in range(ROUNDS):
                for who in cookies:
                    path, cookie = cases[(page, who)]
                    run = load.run(base + path, cookie, seconds=SECONDS, connections=CONNECTIONS)
                    if run["rps"] > results.get((page, who), {"rps": 0})["rps"]:
                        results[(page, who)] = run
            built, custom = results[(page, "built-in member")], results[(page, "custom role")]
            log(f"  {page:10s} built-in {built['rps']:7.1f} req/s  custom {custom['rps']:7.1f} req/s  ({custom['rps'] / built['rps']:.2f})")
    finally:
        if proc is not None:
            stop(proc)
        tdb.stop()
    write_section(SECTION_START, SECTION_END, render(results, counts))
    log("wrote the custom-roles section of bench/results.md")


def render(results: dict, counts: dict) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION_START,
        f"## A custom role costs what a built-in role costs (same run, {stamp})",
        "",
        "`python -m bench.roles`: two people of the 10,000-member org, one holding the built-in role `member`, the"
        " other a custom role with the same permissions, load the same pages from one `portal serve` (uvicorn,"
        f" 1 worker), alternating, best of {ROUNDS} × {SECONDS} s; statements counted in-process. Target: no more"
        " statements, throughput within 5 %.",
        "",
    ]
    lines += side_by_side("built-in", "custom", [
        (page, results[(page, "built-in member")], results[(page, "custom role")],
         f"{counts[f'{page}|built-in member']} / {counts[f'{page}|custom role']}")
        for page in PAGES
    ], "built-in / custom")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main())
    log(f"done in {time.perf_counter() - started:.0f} s")
