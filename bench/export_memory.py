"""Export benchmark: wall time, peak memory and archive size for 10,000 and 100,000 records.

    python -m bench.export_memory [--sizes 10000 100000] [--out bench/export_memory.md]

Starts a throwaway PostgreSQL cluster (like the test suite), migrates it with the real
`portal migrate`, seeds one organization per size with set-based SQL as the superuser (members,
agents, workflows, connections, teams, pending invites and — the bulk — audit events; resource
tables only where this build has them), then runs each export in a fresh process, exactly as the
app's background worker does, and reports that process's wall time and peak RSS
(``getrusage``). Bounded memory shows as a flat peak RSS while time and size grow linearly.
The archive is then checked (its SHA-256, every file against the manifest, the record total),
and finally the org is deleted the way the danger zone does it, and that is timed too.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from uuid import UUID

# Share of each record kind in an org of N records; audit events make up the rest.
MIX = {"membership": 0.05, "agent": 0.03, "workflow": 0.02, "connection": 0.01, "team": 0.005, "invite": 0.01}


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


# -- the measured process ---------------------------------------------------------------------------
async def _child(slug: str, verify_slug: bool = True) -> dict:
    from portal.config import get_settings
    from portal.db import engine as db
    from portal.exports.worker import ExportWorker
    from portal.tenancy import scope as tenancy

    settings = get_settings()
    db.bind(settings.database_url)
    await db.start_pool(4)
    try:
        async with db.connection() as conn:
            org_id, owner_id, owner_email = await conn.fetchrow(
                """SELECT o.id, u.id, u.email FROM organization o
                   JOIN LATERAL (SELECT id, email FROM app_user WHERE email = 'owner@' || o.slug || '.bench') u ON true
                   WHERE o.slug = $1""",
                slug,
            )
        async with db.transaction(org_id=org_id):
            scope = await tenancy.enter(org_id)
            job_id = await scope.fetchval(
                "INSERT INTO export_job (org_id, requested_by, requested_by_email) VALUES ({org}, $1, $2) RETURNING id",
                owner_id, owner_email,
            )
        before = _rss_kib()
        started = time.perf_counter()
        done = await ExportWorker().run_once(org_id=org_id)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before anything else is imported
        assert done == job_id, "the export did not run"
        async with db.transaction(org_id=org_id):
            scope = await tenancy.enter(org_id)
            job = await scope.fetchrow(
                "SELECT status, size_bytes, sha256, records_done FROM export_job WHERE org_id = {org} AND id = $1", job_id
            )
        if verify_slug:
            print(json.dumps({"job_id": str(job_id), "sha256": job["sha256"]}), flush=True)
            sys.stdin.readline()  # the parent checks the archive before it is deleted with the org
        # then delete the org — one transaction, cascade — as the danger zone does. (Imported only
        # now: importing the accounts module computes an argon2 hash, whose 64 MiB would count.)
        from portal.orgs import deletion

        started = time.perf_counter()
        async with db.transaction(org_id=org_id):
            await deletion.erase(await tenancy.enter(org_id), deleted_by=owner_id, deleted_by_email=owner_email)
        delete_s = time.perf_counter() - started
    finally:
        await db.close_pool()
    return {
        "delete_s": delete_s,
        "job_id": str(job_id),
        "status": job["status"],
        "records": job["records_done"],
        "size_bytes": job["size_bytes"],
        "sha256": job["sha256"],
        "wall_s": wall,
        "rss_before_kib": before,
        "peak_rss_kib": peak,
    }


# -- seeding (superuser, below RLS) -----------------------------------------------------------------
async def _tables(conn) -> set[str]:
    return {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


async def seed_org(conn, slug: str, records: int) -> dict[str, int]:
    """One org with ``records`` exportable records in all; returns how many of each kind."""
    tables = await _tables(conn)
    n = {k: int(records * share) for k, share in MIX.items() if k in tables}
    if "team" in n and "team_member" not in tables:
        del n["team"]
    org_id = await conn.fetchval("INSERT INTO organization (slug, name) VALUES ($1, $2) RETURNING id", slug, f"Bench {slug}")
    await conn.execute("INSERT INTO billing_settings (org_id, plan, billing_email) VALUES ($1, 'enterprise', $2)", org_id, f"billing@{slug}.bench")
    members = max(1, n.get("membership", 1))
    await conn.execute(
        """INSERT INTO app_user (email, name, password_hash)
           SELECT CASE g WHEN 1 THEN 'owner@' ELSE 'user' || g || '@' END || $1 || '.bench', 'Bench User ' || g, 'x'
           FROM generate_series(1, $2) g""",
        slug, members,
    )
    await conn.execute(
        """INSERT INTO membership (org_id, user_id, role, created_at)
           SELECT $1, u.id, CASE WHEN u.email LIKE 'owner@%' THEN 'owner' ELSE 'member' END, u.created_at
           FROM app_user u WHERE u.email LIKE '%@' || $2 || '.bench'""",
        org_id, slug,
    )
    n["membership"] = members
    if "agent" in n:
        await conn.execute(
            """INSERT INTO agent (org_id, name, description, model, created_at)
               SELECT $1, 'agent-' || g, 'Bench agent ' || g || ' answers questions about ' || md5(g::text), 'gpt-5-mini',
                      now() - g * interval '1 second'
               FROM generate_series(1, $2) g""",
            org_id, n["agent"],
        )
    if "workflow" in n and "agent" in n:
        await conn.execute(
            """INSERT INTO workflow (org_id, name, description, definition, agent_id)
               SELECT $1, 'workflow-' || a.rn, 'Bench workflow',
                      jsonb_build_object('steps', jsonb_build_array(jsonb_build_object('kind', 'prompt', 'text', md5(a.rn::text)))), a.id
               FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM agent WHERE org_id = $1) a
               WHERE a.rn <= $2""",
            org_id, n["workflow"],
        )
    if "connection" in n:
        await conn.execute(
            """INSERT INTO connection (org_id, name, kind, config, secret_ciphertext, secret_set_at)
               SELECT $1, 'hook-' || g, 'webhook', jsonb_build_object('url', 'https://hooks.bench/' || g), md5(g::text), now()
               FROM generate_series(1, $2) g""",
            org_id, n["connection"],
        )
    if "team" in n:
        await conn.execute(
            "INSERT INTO team (org_id, name, description) SELECT $1, 'team-' || g, '' FROM generate_series(1, $2) g", org_id, n["team"]
        )
        await conn.execute(
            """INSERT INTO team_member (org_id, team_id, membership_id)
               SELECT $1, t.id, m.id FROM
                 (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM team WHERE org_id = $1) t
                 JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM membership WHERE org_id = $1) m
                   ON m.rn % greatest(1, (SELECT count(*) FROM team WHERE org_id = $1)) = t.rn - 1""",
            org_id,
        )
    if "invite" in n:
        await conn.execute(
            """INSERT INTO invite (org_id, email, role, token_hash, expires_at)
               SELECT $1, 'invitee' || g || '@' || $3 || '.bench', 'member', encode(sha256(($3 || g)::bytea), 'hex'),
                      now() + interval '7 days'
               FROM generate_series(1, $2) g""",
            org_id, n["invite"], slug,
        )
    audit = records - 1 - sum(n.values())  # the organization itself counts as one record
    await conn.execute(
        """INSERT INTO audit_event (org_id, actor_email, action, target_type, target_id, target_label, before, after, ip, created_at)
           SELECT $1, 'user' || (g % 500 + 1) || '@bench.test',
                  (ARRAY['agent.created','agent.updated','workflow.created','member.role_changed','billing.updated'])[1 + g % 5],
                  'agent', g::text, 'agent-' || g, jsonb_build_object('status', 'active'),
                  jsonb_build_object('status', 'paused', 'n', g), '10.0.' || (g % 250) || '.' || (g % 200),
                  now() - interval '30 days' + g * interval '10 milliseconds'
           FROM generate_series(1, $2) g""",
        org_id, audit,
    )
    n["audit_event"] = audit
    await conn.execute("ANALYZE")
    return n


async def verify(conn, job_id: str, expected_records: int, sha256: str) -> None:
    """Reassemble the archive from its chunks and check it against the manifest."""
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as f:
        seq = -1
        while True:
            row = await conn.fetchrow(
                "SELECT seq, data FROM export_chunk WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT 1", UUID(job_id), seq
            )
            if row is None:
                break
            seq = row["seq"]
            digest.update(row["data"])
            f.write(row["data"])
        assert digest.hexdigest() == sha256, "archive checksum"
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            for entry in manifest["files"]:
                h = hashlib.sha256()
                with zf.open(entry["name"]) as member:
                    for block in iter(lambda: member.read(1 << 20), b""):
                        h.update(block)
                assert h.hexdigest() == entry["sha256"], entry["name"]
            total = sum(e["records"] for e in manifest["files"])
            assert total == expected_records, (total, expected_records)


async def main(sizes: list[int], out: Path | None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pg import TestDatabase

    tdb = TestDatabase()
    await tdb.start()
    try:
        tdb.migrate()
        env = {**os.environ, **tdb.env()}
        su = await tdb.cluster.superuser_connect()
        rows = []
        try:
            for size in sizes:
                slug = f"export-{size}"
                t = time.perf_counter()
                mix = await seed_org(su, slug, size)
                seeded = time.perf_counter() - t
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.export_memory", "--child", slug],
                    env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    cwd=str(Path(__file__).resolve().parent.parent),
                )
                first = proc.stdout.readline()
                if not first:
                    raise SystemExit(f"export of {slug} failed:\n{proc.stderr.read()}")
                built = json.loads(first)
                await verify(su, built["job_id"], size, built["sha256"])  # before the org is deleted
                child_out, child_err = proc.communicate("\n")
                if proc.returncode != 0:
                    raise SystemExit(f"export of {slug} failed:\n{child_out}\n{child_err}")
                result = json.loads(child_out.strip().splitlines()[-1])
                assert result["status"] == "done" and result["records"] == size, result
                left = await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", UUID(result["job_id"]))
                assert left == 0 and not await su.fetchval("SELECT 1 FROM organization WHERE slug = $1", slug)
                rows.append((size, mix, seeded, result))
                print(
                    f"{size:>9,} records: {result['wall_s']:6.2f} s, peak RSS {result['peak_rss_kib'] / 1024:6.1f} MiB "
                    f"(before export {result['rss_before_kib'] / 1024:.1f} MiB), archive {result['size_bytes'] / 1e6:.2f} MB "
                    f"[seeded in {seeded:.1f} s; archive verified]; org deleted in {result['delete_s']:.2f} s",
                    flush=True,
                )
        finally:
            await su.close()
    finally:
        tdb.stop()
    report = [
        "# Export benchmark",
        "",
        "One export per organization size, each in a fresh process (the worker's code path: snapshot read in",
        "keyset pages, ZIP streamed into 256 KiB chunks in PostgreSQL). Peak RSS is the whole process's.",
        "Then the org is deleted in one transaction (lock, per-table counts, receipt, cascade).",
        "",
        "| records | export wall time | peak RSS | RSS before export | archive | per 1,000 records | delete org |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, _, _, r in rows:
        report.append(
            f"| {size:,} | {r['wall_s']:.2f} s | {r['peak_rss_kib'] / 1024:.1f} MiB | {r['rss_before_kib'] / 1024:.1f} MiB "
            f"| {r['size_bytes'] / 1e6:.2f} MB | {r['wall_s'] / size * 1000 * 1000:.1f} ms | {r['delete_s']:.2f} s |"
        )
    report += ["", "Record mix: " + "; ".join(f"{size:,}: " + ", ".join(f"{k} {v:,}" for k, v in mix.items()) for size, mix, _, _ in rows), ""]
    text = "\n".join(report)
    print("\n" + text)
    if out:
        out.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    parser.add_argument("--child", metavar="SLUG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child))))
    else:
        asyncio.run(main(args.sizes, args.out))
