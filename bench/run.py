"""`make bench`: seed a large dataset on a throwaway PostgreSQL, measure, write bench/results.md.

Every target is a ratio measured in the same run (absolute numbers on shared machines are noisy).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

import logging

from bench import load, recorder, soak
from bench.seed import LARGE, SMALL, counts, seed
from portal.devdb import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.md"
logging.getLogger("httpx").setLevel(logging.WARNING)
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
CONFIGS = [
    (server, int(workers))
    for server, workers in (
        c.split(":") for c in os.environ.get("BENCH_CONFIGS", "uvicorn:1,uvicorn:2,granian:1,granian:2").split(",")
    )
]


def log(msg: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {msg}", flush=True)


async def make_session(su, slug: str) -> str:
    """A signed-in session for the org's owner, created as sign-in would (hashed token)."""
    from portal.accounts.sessions import token_hash

    import secrets

    token = secrets.token_urlsafe(32)
    user_id = await su.fetchval(
        "SELECT m.user_id FROM membership m JOIN organization o ON o.id = m.org_id WHERE o.slug = $1 AND m.role = 'owner'", slug
    )
    await su.execute("INSERT INTO user_session (token_hash, user_id) VALUES ($1, $2)", token_hash(token), user_id)
    return f"portal_session={token}"


async def deep_cursor(su, slug: str, position: int) -> str:
    from portal.params import encode_cursor

    row = await su.fetchrow(
        """SELECT m.created_at, m.id FROM membership m JOIN organization o ON o.id = m.org_id
           WHERE o.slug = $1 ORDER BY m.created_at, m.id OFFSET $2 LIMIT 1""",
        slug, position,
    )
    return encode_cursor(row["created_at"], row["id"])


def pages_for(slug: str, deep: str) -> dict[str, str]:
    base = f"/orgs/{slug}"
    return {
        "dashboard": base,
        "members": f"{base}/members",
        "members (deep page)": f"{base}/members?after={deep}",
        "audit": f"{base}/audit",
        "agents": f"{base}/agents",
    }


async def statements_per_request(env: dict, pages: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Run each page once in-process and count the SQL statements it sends."""
    os.environ.update(env)
    from portal.app import create_app
    from portal.config import load_settings, set_settings
    from portal.db import engine as db

    set_settings(load_settings())
    db.bind(env["DATABASE_URL"])
    await db.start_pool(2)
    app = create_app(manage_pool=False)
    out = {}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            for name, (path, cookie) in pages.items():
                await client.get(path, headers={"Cookie": cookie})  # warm caches
                with recorder.recording() as rec:
                    r = await client.get(path, headers={"Cookie": cookie})
                assert r.status_code == 200, (path, r.status_code)
                out[name] = len(rec.statements)
    finally:
        await db.close_pool()
    return out


async def concurrency(env: dict, su_factory) -> dict:
    from bench import concurrency as conc
    from portal.app import create_app
    from portal.db import engine as db

    db.bind(env["DATABASE_URL"])
    await db.start_pool(10)
    su = await su_factory()
    try:
        return await conc.run(create_app(manage_pool=False), su)
    finally:
        await su.close()
        await db.close_pool()


def side_by_side(left: str, right: str, rows: list[tuple[str, dict, dict, str]], statements: str) -> list[str]:
    """A markdown table of two measurements of each page: (page, left run, right run, statements),
    with the ratio right ÷ left."""
    lines = [
        f"| page | {left} req/s | {right} req/s | ratio | {left} p50 ms | {right} p50 ms | statements {statements} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, a, b, count in rows:
        lines.append(
            f"| {name} | {a['rps']:.0f} | {b['rps']:.0f} | {b['rps'] / a['rps']:.2f} | {a['p50_ms']:.1f} | {b['p50_ms']:.1f} | {count} |"
        )
    return lines


def write_section(start: str, end: str, text: str) -> None:
    """Put ``text`` (which begins with ``start`` and ends with ``end``) in bench/results.md in place of
    the section between those markers, or at the end: the scripts of `make bench` each own one."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in current:
        head, rest = current.split(start, 1)
        tail = rest.split(end, 1)[1] if end in rest else ""
        current = head + text.strip() + tail
    else:
        current = current.rstrip() + "\n\n" + text.strip() + "\n"
    RESULTS.write_text(current)


def serve(cmd: list[str], env: dict, port: int, cwd: Path | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_port(port, timeout=60)
    time.sleep(0.5)
    return proc


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def portal_cmd(server: str, workers: int, port: int) -> list[str]:
    return [sys.executable, "-m", "portal.cli", "serve", "--port", str(port), "--workers", str(workers), "--server", server]


def floor_cmd(server: str, workers: int, port: int) -> list[str]:
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--port", str(port),
                "--workers", str(workers), "--no-ws", "bench.floor:create"]
    return [sys.executable, "-m", "uvicorn", "--factory", "bench.floor:create", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log"]


def measure(base: str, pages: dict[str, tuple[str, str]]) -> dict[str, dict]:
    out = {}
    for name, (path, cookie) in pages.items():
        load.run(base + path, cookie, seconds=1, connections=CONNECTIONS)  # warm-up
        out[name] = load.run(base + path, cookie, seconds=SECONDS, connections=CONNECTIONS)
        r = out[name]
        log(f"  {name:24s} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  errors {r['errors'] + r['non2xx']}")
    return out


async def main() -> None:
    from tests.pg import TestDatabase

    if not load.have_wrk():
        sys.exit("bench: wrk is needed (Debian: apt-get install -y wrk); `make bench` installs it")
    started = time.perf_counter()
    tdb = TestDatabase()
    await tdb.start()
    tdb.migrate()
    env = {**os.environ, **tdb.env(), "DB_POOL_SIZE": "10"}
    report: dict = {"cores": os.cpu_count(), "python": platform.python_version(), "seconds": SECONDS, "connections": CONNECTIONS}
    try:
        su = await tdb.cluster.superuser_connect()
        log("seeding")
        t = time.perf_counter()
        report["seed_steps"] = await seed(su)
        report["seed_seconds"] = time.perf_counter() - t
        report["counts"] = await counts(su)
        large_cookie, small_cookie = await make_session(su, LARGE), await make_session(su, SMALL)
        large = {k: (v, large_cookie) for k, v in pages_for(LARGE, await deep_cursor(su, LARGE, 5000)).items()}
        small = {k: (v, small_cookie) for k, v in pages_for(SMALL, await deep_cursor(su, SMALL, 5)).items()}
        await su.close()

        log("counting SQL statements per request")
        report["statements"] = {
            "large": await statements_per_request(env, large),
            "small": await statements_per_request(env, small),
        }

        log("concurrency: 100 invite accepts, 50 role changes")
        report["concurrency"] = await concurrency(env, tdb.cluster.superuser_connect)
        log(f"  {report['concurrency']}")

        report["throughput"] = {}
        report["floor"] = {}
        for server, workers in CONFIGS:
            port = free_port()
            log(f"portal on {server} --workers {workers}")
            proc = serve(portal_cmd(server, workers, port), env, port)
            try:
                pages = dict(large)
                if (server, workers) == CONFIGS[0]:
                    pages.update({f"{k} [small org]": v for k, v in small.items() if k in ("members", "members (deep page)", "audit")})
                report["throughput"][f"{server} x{workers}"] = measure(f"http://127.0.0.1:{port}", pages)
            finally:
                stop(proc)
            port = free_port()
            log(f"floor on {server} --workers {workers}")
            floor_env = {**env, "BENCH_FLOOR_PAGES": json.dumps([{"path": large["members"][0], "cookie": large_cookie}])}
            proc = serve(floor_cmd(server, workers, port), floor_env, port)
            try:
                report["floor"][f"{server} x{workers}"] = measure(f"http://127.0.0.1:{port}", {"members": large["members"]})
            finally:
                stop(proc)

        log("export: 10,000 and 100,000 records (bench/export_memory.py)")
        export_md = ROOT / "bench" / ".export_memory.md"
        out = subprocess.run([sys.executable, "-m", "bench.export_memory", "--out", str(export_md)], capture_output=True, text=True, cwd=ROOT)
        report["export"] = export_md.read_text() if out.returncode == 0 and export_md.exists() else f"failed:\n{out.stderr[-2000:]}"
        export_md.unlink(missing_ok=True)
    finally:
        tdb.stop()
    report["total_seconds"] = time.perf_counter() - started
    # Everything anew but the soak section, which `make soak` writes.
    RESULTS.write_text(soak.keep(render(report), RESULTS.read_text() if RESULTS.exists() else None))
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2, default=str))
    log(f"wrote {RESULTS.relative_to(ROOT)} in {report['total_seconds']:.0f} s")


# What the numbers led us to change, measured on the same 2-core machine with this script.
HISTORY = [
    "## Changes made from these numbers (before → after, 2 cores)",
    "",
    "- **Members page rows: a macro, not a scoped block per row (issue 13).** Profiling the real request"
    " in-process (cProfile, 400 requests) found no cost special to page 1: Python time was ~11 ms on page 1"
    " and on a deep page alike, and ~8 ms of it was drawing 50 rows. Each row was a `{% block scoped %}`"
    " inside the loop: Jinja copied the whole context per row and passed every piece of output up through"
    " five nested generators (~600,000 generator resumes per 200 renders). Rows are now a macro (the block"
    " stays outside the page for the htmx one-row swap; HTML byte-identical): 50 rows 4.1 → 1.9 ms; the"
    " 10,000-member org's page 1 22.8 → 8.3 ms per request in-process, the 10-member org's 7.4 → 5.6 ms.",
    "- **The member count is kept, not counted (issue 13).** `organization.member_count` is maintained by"
    " statement-level triggers on membership in the same transaction as every change (invite accept, create,"
    " remove, leave, cascade, bulk seeds); the app role cannot write it, and a change it cannot follow under"
    " RLS raises instead of drifting. State machines and race tests assert it equals `count(*)`. Page 1's"
    " SQL 9.5 → 0.8 ms. Accepting an invite now locks the org row first (org → invite → membership), which"
    " a new test showed was needed: accept racing an owner's revoke deadlocked.",
    "- **Statements per members page 6 → 5.** `enter_org()` also returns the user's org list for the switcher"
    " on page loads (one round trip fewer on every GET of an org page).",
    "- **Statements per request, members page: 10 → 6.** The recorder showed asyncpg's `RESET ALL` on every"
    " connection release (2 per request) and three separate statements to resolve the org (set user, find"
    " membership, set tenant). Now a pool reset hook skips the reset (the app never sets session state; tests"
    " enforce it) and one `enter_org()` call does the resolution, locks included.",
    "- **Members page, deep page (position 5,000): 76 → 116 req/s** (uvicorn, 1 worker). Under RLS the planner"
    " underestimates the rows after the cursor and picks a bitmap scan plus sort; it then joined every"
    " remaining account before the LIMIT (25 ms). The page now limits the memberships first and joins 51"
    " accounts (9 ms).",
    "- **Seeding 100,000 memberships: 56 s → 3 s** (a correlated subquery per row replaced by an array lookup).",
    "- **Tried and reverted: RLS policies in the InitPlan form** `(SELECT current_setting(...))`. Counting 10,000"
    " members went 6 ms → 2 ms, but with the tenant hidden from the planner the members page lost its ordered"
    " index scan (bitmap scan + sort of every row): 118 → 64 req/s. Reverted.",
    "",
    "### Not met, and why",
    "",
    "- **Deep page of the 10,000-member org vs the 10-member org's page 1 (target ≥ 0.85; page 1 itself meets it).**"
    " The deep page's SQL takes 7–8 ms at both sizes (the small org's deep page is as slow as the large"
    " one's): the planner multiplies our `org_id = …` filter by the RLS policy's `org_id = current_setting(…)`,"
    " expects ~48 rows after the cursor instead of thousands, and picks a bitmap scan plus a sort over the"
    " index scan (0.28 ms with bitmap scans off). Next: give the planner the tenant once (one policy"
    " expression it can match to the filter), or a cursor query shaped so only the index scan fits.",
    "- **Two workers vs one (target ≥ 1.6): granian 1.21, uvicorn 0.92.** uvicorn's workers share one"
    " listening socket, and wrk's 16 kept-alive connections land on one of them; granian spreads them, so"
    " `portal serve --workers N` (N > 1) now uses granian unless `--server` says otherwise. Both stay below"
    " 1.6 here because wrk, PostgreSQL and both workers share 2 cores: the floor route (no framework) gains"
    " only 1.1–1.6× from a second worker on the same machine.",
    "",
]


def render(r: dict) -> str:
    def ratio(a, b):
        return a / b if b else float("nan")

    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}: {r['cores']} cores, Python {r['python']}, "
        f"wrk with {r['connections']} connections, {r['seconds']} s per measurement after a 1 s warm-up. "
        "Absolute numbers are noisy on shared machines; the targets are ratios from the same run.",
        "",
        "## Dataset",
        "",
        f"Seeded in {r['seed_seconds']:.1f} s (bulk SQL, one pre-computed password hash): "
        + ", ".join(f"{k} {v:,}" for k, v in r["counts"].items()),
        "",
        "## Throughput (large org: 10,000 members)",
        "",
        "| server | page | req/s | p50 ms | p95 ms | p99 ms | p99/p50 | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    worst_tail, errors = 0.0, 0
    for cfg, pages in r["throughput"].items():
        for name, m in pages.items():
            tail = ratio(m["p99_ms"], m["p50_ms"])
            worst_tail = max(worst_tail, tail)
            errors += m["errors"] + m["non2xx"]
            lines.append(f"| {cfg} | {name} | {m['rps']:.0f} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {m['p99_ms']:.1f} | {tail:.1f} | {m['errors'] + m['non2xx']} |")
    lines += ["", "## Members page vs the floor route", "",
              "The floor replays the members page's exact SQL on raw asyncpg and renders the same template, with no framework.", "",
              "| server | portal req/s | floor req/s | ratio (target ≥ 0.70) |", "|---|---:|---:|---:|"]
    floor_ratios = []
    for cfg, m in r["floor"].items():
        ours = r["throughput"][cfg]["members"]["rps"]
        fl = m["members"]["rps"]
        floor_ratios.append(ratio(ours, fl))
        lines.append(f"| {cfg} | {ours:.0f} | {fl:.0f} | {ratio(ours, fl):.2f} |")
    first = next(iter(r["throughput"].values()))
    lines += ["", "## Scaling with org size (uvicorn, 1 worker)", "",
              "| page | 10,000-member org req/s | 10-member org req/s | ratio (target ≥ 0.85) | statements large / small |",
              "|---|---:|---:|---:|---:|"]
    scale_ratios = []
    for name, small_name in (("members", "members"), ("members (deep page)", "members"), ("audit", "audit")):
        big, sm = first[name]["rps"], first[f"{small_name} [small org]"]["rps"]
        scale_ratios.append(ratio(big, sm))
        label = name if small_name == name else f"{name} ÷ small org's page 1"
        lines.append(f"| {label} | {big:.0f} | {sm:.0f} | {ratio(big, sm):.2f} | {r['statements']['large'][name]} / {r['statements']['small'][small_name]} |")
    lines.append(f"| members (deep page), small org | — | {first['members (deep page) [small org]']['rps']:.0f} | — | — |")
    worker_ratios = {}
    for server in sorted({cfg.split(' x')[0] for cfg in r["throughput"]}):
        one, two = r["throughput"].get(f"{server} x1"), r["throughput"].get(f"{server} x2")
        if one and two:
            worker_ratios[server] = ratio(two["members"]["rps"], one["members"]["rps"])
    if worker_ratios:
        lines += ["", "## Two workers vs one (members page, 10,000-member org)", "",
                  "| server | 1 worker req/s | 2 workers req/s | ratio (target ≥ 1.6) |", "|---|---:|---:|---:|"]
        for server, k in worker_ratios.items():
            lines.append(f"| {server} | {r['throughput'][f'{server} x1']['members']['rps']:.0f} | "
                         f"{r['throughput'][f'{server} x2']['members']['rps']:.0f} | {k:.2f} |")
    lines += ["", "## SQL statements per request", "", "| page | large org | small org |", "|---|---:|---:|"]
    for name, n in r["statements"]["large"].items():
        lines.append(f"| {name} | {n} | {r['statements']['small'][name]} |")
    if "concurrency" in r:
        a, rc = r["concurrency"]["accepts"], r["concurrency"]["role_changes"]
        lines += ["", "## Concurrency (one app process, in-process clients)", "",
                  "| what | requests | wall s | per s | errors | invariants |", "|---|---:|---:|---:|---:|---|",
                  f"| concurrent invite accepts (distinct invites) | {a['requests']} | {a['seconds']:.2f} | {a['per_second']:.0f} | {a['errors']} | "
                  f"{'hold' if a['invariant'] else 'BROKEN'}: {a['memberships']} memberships, {a['invites_accepted']} invites accepted |",
                  f"| concurrent role changes in one org | {rc['requests']} | {rc['seconds']:.2f} | {rc['per_second']:.0f} | {rc['errors']} | "
                  f"{'hold' if rc['invariant'] else 'BROKEN'}: {rc['changed']} changed, {rc['owners']} owner, {rc['audit_events']} audit events |"]
        errors += a["errors"] + rc["errors"]
    if "export" in r:
        lines += ["", "## Export (bounded memory, linear time)", "", str(r["export"]).strip()]
    same_statements = r["statements"]["large"] == r["statements"]["small"]
    lines += [
        "", "## Targets", "",
        f"- members page ≥ 0.7 × floor: {'met' if min(floor_ratios) >= 0.7 else 'NOT met'} (min {min(floor_ratios):.2f})",
        f"- 10,000-member org ≥ 0.85 × 10-member org: {'met' if min(scale_ratios) >= 0.85 else 'NOT met'} (min {min(scale_ratios):.2f}); "
        f"statements per request equal: {'yes' if same_statements else 'NO'}",
        *([f"- 2 workers ≥ 1.6 × 1 worker (members page): best {max(worker_ratios.values()):.2f} "
           f"({max(worker_ratios, key=worker_ratios.get)}): {'met' if max(worker_ratios.values()) >= 1.6 else 'NOT met'}"]
          if worker_ratios else []),
        f"- 0 errors under load: {'met' if errors == 0 else f'NOT met ({errors})'}",
        f"- p99 under 10 × p50: {'met' if worst_tail < 10 else 'NOT met'} (worst {worst_tail:.1f}×)",
        "", f"Total run time: {r['total_seconds']:.0f} s.", "",
    ]
    lines += HISTORY
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
