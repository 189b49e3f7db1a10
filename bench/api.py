"""`python -m bench.api`: the JSON API against the page it mirrors (issue 16).

The 10,000-member org's agents, one page of 25, from one `portal serve` (uvicorn, 1 worker):
`GET /orgs/{slug}/agents` as the owner's browser session and `GET /api/v1/orgs/{slug}/agents?limit=25`
with an owner-created member-role API token, alternating, best of ``ROUNDS`` rounds; statements
counted in-process. The server runs with a high ``API_RATE`` so the limit never answers instead
(its counting statement is measured). Writes a marked section of bench/results.md (`make bench`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sys
import time
from datetime import datetime, timezone

from bench import load, recorder
from bench.run import CONNECTIONS, log, make_session, serve, side_by_side, stop, write_section
from bench.seed import LARGE, seed
from portal.devdb import free_port

SECONDS = int(os.environ.get("BENCH_COMPARE_SECONDS", "3"))
ROUNDS = 3
SECTION_START, SECTION_END = "<!-- api -->", "<!-- /api -->"


async def _token(su) -> str:
    token = "prt_" + secrets.token_urlsafe(32)
    org, owner, email = await su.fetchrow(
        """SELECT o.id, m.user_id, u.email FROM organization o JOIN membership m ON m.org_id = o.id AND m.role = 'owner'
           JOIN app_user u ON u.id = m.user_id WHERE o.slug = $1""",
        LARGE,
    )
    await su.execute(
        """INSERT INTO api_token (org_id, name, prefix, token_hash, role, created_by, created_by_email, expires_at)
           VALUES ($1, 'Bench', $2, $3, 'member', $4, $5, now() + interval '1 day')""",
        org, token[:12], hashlib.sha256(token.encode()).hexdigest(), owner, email,
    )
    return token


async def _statements(env: dict, cases: dict[str, tuple[str, str, str]]) -> dict[str, int]:
    import httpx

    os.environ.update(env)
    from portal.app import create_app
    from portal.config import load_settings, set_settings
    from portal.db import engine as db

    set_settings(load_settings())
    db.bind(env["DATABASE_URL"])
    await db.start_pool(2)
    out = {}
    try:
        app = create_app(manage_pool=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for name, (path, cookie, authorization) in cases.items():
                headers = {"Cookie": cookie, **({"Authorization": authorization} if authorization else {})}
                await client.get(path, headers=headers)
                with recorder.recording() as rec:
                    r = await client.get(path, headers=headers)
                assert r.status_code == 200, (path, r.status_code)
                out[name] = len(rec.statements)
    finally:
        await db.close_pool()
    return out


async def main() -> None:
    from tests.pg import TestDatabase

    if not load.have_wrk():
        sys.exit("bench: wrk is needed (Debian: apt-get install -y wrk); `make bench` installs it")
    tdb = TestDatabase()
    proc = None
    best: dict[str, dict] = {}
    try:
        await tdb.start()
        tdb.migrate()
        env = {**os.environ, **tdb.env(), "DB_POOL_SIZE": "10", "API_RATE": "100000000"}
        su = await tdb.cluster.superuser_connect()
        log("seeding")
        await seed(su)
        cookie = await make_session(su, LARGE)
        token = await _token(su)
        await su.close()
        cases = {
            "agents page (HTML, session)": (f"/orgs/{LARGE}/agents", cookie, ""),
            "agents (JSON API, token)": (f"/api/v1/orgs/{LARGE}/agents?limit=25", "", f"Bearer {token}"),
        }
        counts = await _statements(env, cases)
        port = free_port()
        proc = serve([sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", "1", "--server", "uvicorn"], env, port)
        base = f"http://127.0.0.1:{port}"
        for name, (path, c, auth) in cases.items():
            load.run(base + path, c, seconds=1, connections=CONNECTIONS, authorization=auth)  # warm-up
        for _ in range(ROUNDS):
            for name, (path, c, auth) in cases.items():
                run = load.run(base + path, c, seconds=SECONDS, connections=CONNECTIONS, authorization=auth)
                assert run["non2xx"] == 0, (name, run)
                if run["rps"] > best.get(name, {"rps": 0})["rps"]:
                    best[name] = run
        page, api = (best[name] for name in cases)
        log(f"  page {page['rps']:.1f} req/s, API {api['rps']:.1f} req/s ({api['rps'] / page['rps']:.2f})")
    finally:
        if proc is not None:
            stop(proc)
        tdb.stop()
    write_section(SECTION_START, SECTION_END, render(cases, best, counts))
    log("wrote the api section of bench/results.md")


def render(cases: dict, best: dict, counts: dict) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (page_name, api_name) = cases
    lines = [
        SECTION_START,
        f"## The JSON API against the page it mirrors (same run, {stamp})",
        "",
        "`python -m bench.api`: one page of 25 agents of the 10,000-member org from one `portal serve` (uvicorn,"
        f" 1 worker), as the HTML page with a session and as `GET /api/v1/orgs/…/agents?limit=25` with an API token,"
        f" alternating, best of {ROUNDS} × {SECONDS} s; statements counted in-process (the API's include its rate-limit"
        " count, made before the request's transaction).",
        "",
    ]
    lines += side_by_side("page", "API", [("agents", best[page_name], best[api_name], f"{counts[page_name]} / {counts[api_name]}")], "page / API")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    started = time.perf_counter()
    asyncio.run(main())
    log(f"done in {time.perf_counter() - started:.0f} s")
