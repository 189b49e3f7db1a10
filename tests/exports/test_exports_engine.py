"""The export engine: interrupted jobs are recovered or failed cleanly, a worker that lost its
lease stops, no partial archive is ever offered, and the background loop does its work.

Jobs are driven directly (``run_once``); a pause in the middle of a job is a gate awaited after a
stored chunk, so nothing here depends on timing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from portal import clock
from portal.exports import exporters as exporters_module
from portal.exports.exporters import Exporter
from portal.records import record
from portal.exports.worker import ABANDONED_MESSAGE, FAILED_MESSAGE, MAX_ATTEMPTS, ExportWorker
from tests.archive import request_export, verify_archive
from tests.concurrency import STALE, ChunkGate, paused_worker, start_paused
from tests.factories import org_with_events


async def job_row(su, job_id):
    return await su.fetchrow("SELECT * FROM export_job WHERE id = $1", job_id)


async def download(client, org, job_id):
    return await client.get(f"/orgs/{org.slug}/exports/{job_id}/download")


async def test_a_crashed_job_is_never_offered_and_is_restarted_from_scratch(client_for, make_org, su):
    org = await org_with_events(make_org, su)
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    gate = ChunkGate(after=3)
    crashed = paused_worker(gate, release_on_cancel=False)  # like a killed process: no goodbye
    task = await start_paused(crashed, gate, org)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    row = await job_row(su, job_id)
    assert row["status"] == "running" and row["attempts"] == 1 and row["progress"] < 100
    assert row["records_done"] < row["records_total"] == 1503  # org + owner + 1500 events + the request
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 3
    assert (await download(c, org, job_id)).status_code == 404  # partial: not offered
    frag = await c.get(f"/orgs/{org.slug}/exports/{job_id}", headers={"HX-Request": "true"})
    assert "<progress" in frag.text and "hx-trigger" in frag.text

    # while its heartbeat is fresh nobody takes it over; once stale, it is restarted
    assert await ExportWorker(stale_after=STALE).run_once(org_id=org.id) is None
    clock.advance(STALE + timedelta(seconds=1))
    assert await ExportWorker(stale_after=STALE, chunk_size=4096).run_once(org_id=org.id) == job_id
    row = await job_row(su, job_id)
    assert row["status"] == "done" and row["attempts"] == 2
    seqs = [r["seq"] for r in await su.fetch("SELECT seq FROM export_chunk WHERE job_id = $1 ORDER BY seq", job_id)]
    assert seqs == list(range(len(seqs)))
    r = await download(c, org, job_id)
    assert r.status_code == 200
    manifest, _ = verify_archive(r.content)
    assert {f["name"]: f["records"] for f in manifest["files"]}["audit_log.jsonl"] == 1501


async def test_a_stopping_worker_hands_its_job_back(client_for, make_org, su):
    org = await org_with_events(make_org, su)
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    gate = ChunkGate(after=2)
    task = await start_paused(paused_worker(gate), gate, org)  # release_on_cancel (the default)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await job_row(su, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["progress"] == 0
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 0
    assert (await download(c, org, job_id)).status_code == 404
    assert await ExportWorker().run_once(org_id=org.id) == job_id  # no waiting for staleness
    verify_archive((await download(c, org, job_id)).content)


async def test_a_job_interrupted_too_often_fails_with_a_message(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    await su.execute(
        "UPDATE export_job SET status = 'running', attempts = $2, heartbeat_at = $3 WHERE id = $1",
        job_id, MAX_ATTEMPTS, clock.now(),
    )
    await su.execute("INSERT INTO export_chunk (org_id, job_id, seq, data) VALUES ($1, $2, 0, 'PK partial')", org.id, job_id)
    clock.advance(STALE + timedelta(seconds=1))
    assert await ExportWorker(stale_after=STALE).run_once(org_id=org.id) == job_id
    row = await job_row(su, job_id)
    assert row["status"] == "failed" and row["error"] == ABANDONED_MESSAGE.format(n=MAX_ATTEMPTS)
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 0
    frag = await c.get(f"/orgs/{org.slug}/exports/{job_id}", headers={"HX-Request": "true"})
    assert "Failed" in frag.text and "interrupted" in frag.text and "hx-trigger" not in frag.text
    assert (await download(c, org, job_id)).status_code == 404
    assert await su.fetchval(
        "SELECT count(*) FROM audit_event WHERE org_id = $1 AND action = 'export.failed' AND target_id = $2", org.id, str(job_id)
    ) == 1


async def test_an_error_while_building_fails_the_job_cleanly(client_for, make_org, su, monkeypatch):
    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)

    async def broken_pages(scope, page_size):
        yield [{"ok": 1}]
        raise RuntimeError("disk on fire")

    async def one(scope):
        return 1

    monkeypatch.setitem(
        exporters_module.EXPORTERS, "zz_broken.json",
        Exporter("zz_broken.json", "array", record(ok={}), one, broken_pages),
    )
    assert await ExportWorker(chunk_size=64).run_once(org_id=org.id) == job_id
    row = await job_row(su, job_id)
    assert row["status"] == "failed" and row["error"] == FAILED_MESSAGE  # no internals shown
    assert await su.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 0
    assert (await download(c, org, job_id)).status_code == 404


async def test_a_worker_that_lost_its_lease_stops_without_touching_the_new_attempt(client_for, make_org, su):
    org = await org_with_events(make_org, su)
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    gate = ChunkGate(after=2)
    slow = paused_worker(gate)
    task = await start_paused(slow, gate, org)
    # the slow worker looks dead (stale heartbeat): another process restarts and finishes the job
    clock.advance(STALE + timedelta(seconds=1))
    assert await ExportWorker(stale_after=STALE).run_once(org_id=org.id) == job_id
    done = await job_row(su, job_id)
    assert done["status"] == "done" and done["attempts"] == 2
    chunks_before = await su.fetch("SELECT seq, md5(data) FROM export_chunk WHERE job_id = $1 ORDER BY seq", job_id)
    gate.release.set()
    assert await task == job_id  # it stops quietly at its next write
    assert await job_row(su, job_id) == done
    assert await su.fetch("SELECT seq, md5(data) FROM export_chunk WHERE job_id = $1 ORDER BY seq", job_id) == chunks_before
    verify_archive((await download(c, org, job_id)).content)


async def test_two_workers_never_run_the_same_job(client_for, make_org, su):
    org = await org_with_events(make_org, su, events=300)
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    results = await asyncio.gather(*(ExportWorker().run_once(org_id=org.id) for _ in range(4)))
    assert results.count(job_id) == 1 and results.count(None) == 3
    assert (await job_row(su, job_id))["attempts"] == 1


async def test_the_worker_finds_jobs_of_any_org(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    worker = ExportWorker()
    for _ in range(200):  # other tests may have left queued jobs: drain until ours is done
        if await worker.run_once() is None or await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "done":
            break
    assert await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "done"


async def test_background_loop_builds_requested_exports_and_stops_cleanly(client_for, make_org, su):
    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    worker = ExportWorker(poll_interval=0.05)
    worker.start()
    try:
        for _ in range(1200):  # a liveness bound, not a timing assertion
            if await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "done":
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()
    assert await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "done"
    assert (await download(c, org, job_id)).status_code == 200


async def test_the_worker_policy_reads_job_rows_only_and_only_when_asked(database, client_for, make_org, su):
    import asyncpg

    org = await make_org()
    c = await client_for(org.owner)
    job_id = await request_export(c, org)
    assert await ExportWorker().run_once(org_id=org.id) == job_id
    conn = await asyncpg.connect(database.app_url)  # the app role, no org set
    try:
        assert await conn.fetchval("SELECT count(*) FROM export_job WHERE id = $1", job_id) == 0
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.export_worker', 'on', true)")
            assert await conn.fetchval("SELECT count(*) FROM export_job WHERE id = $1", job_id) == 1
            assert await conn.fetchval("SELECT count(*) FROM export_chunk WHERE job_id = $1", job_id) == 0
            assert await conn.execute("UPDATE export_job SET status = 'failed' WHERE id = $1", job_id) == "UPDATE 0"
            assert await conn.execute("DELETE FROM export_job WHERE id = $1", job_id) == "DELETE 0"
        # transaction-local: gone with the transaction
        assert await conn.fetchval("SELECT count(*) FROM export_job WHERE id = $1", job_id) == 0
    finally:
        await conn.close()
    assert await su.fetchval("SELECT status FROM export_job WHERE id = $1", job_id) == "done"
