"""The export worker: claims queued jobs from PostgreSQL and builds their archives.

Every app process runs one (started in the app's lifespan); they cooperate through the database:

* **Discover** jobs across orgs in a short transaction that sets ``app.export_worker`` (the
  ``export_worker_queue`` policy lets it read job rows, never archive data).
* **Claim** one inside that job's tenant transaction: ``SELECT … FOR UPDATE SKIP LOCKED`` on a job
  that is queued, or running with a stale heartbeat (its process died). A claim bumps
  ``attempts``; the attempt number is the lease: every later write checks it, so a worker that
  lost its lease stops instead of writing into a job someone else restarted. A restart begins
  from scratch (the old chunks are deleted); after ``max_attempts`` the job fails with a message.
* **Build** the archive from one consistent, read-only snapshot of the org (REPEATABLE READ),
  page by page, while chunks, progress and heartbeats are written in short transactions of their
  own, so the page polling the job sees them at once. Only the final transaction marks the job
  ``done``: a partial archive is never offered.
* **Purge** archives past ``expires_at`` (``EXPORT_TTL``): their chunks are deleted and the job is
  kept as history with status ``expired``.

Tests drive it directly (``await worker.run_once(org_id=…)``) — nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID

import asyncpg
from piccolo.engine.postgres import PostgresTransaction

from portal import clock
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.config import get_settings
from portal.db import engine as db
from portal.exports.archive import CHUNK_SIZE, ArchiveBuilder
from portal.exports.exporters import exporters
from portal.exports.format import FORMAT_NAME, FORMAT_VERSION
from portal.jobs import PollingWorker
from portal.records import iso
from portal.tenancy import scope as tenancy
from portal.tenancy.scope import TenantScope

log = logging.getLogger("portal.exports")

MAX_ATTEMPTS = 3
FAILED_MESSAGE = "The export could not be completed. Please request a new one."
ABANDONED_MESSAGE = "The export was interrupted {n} times and was stopped. Please request a new one."

# The worker's cross-org view of the queue (policy export_worker_queue). Job metadata only.
WORKER_MODE = "SELECT set_config('app.export_worker', 'on', true)"
_DISCOVER_ALL = (
    "SELECT org_id, id FROM export_job "  # unscoped: the worker's queue across orgs (read-only policy)
    "WHERE status = 'queued' OR (status = 'running' AND heartbeat_at < $1) "
    "ORDER BY created_at LIMIT $2"
)
_EXPIRED_ALL = (
    "SELECT org_id, id FROM export_job "  # unscoped: archives to purge across orgs (read-only policy)
    "WHERE status = 'done' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
)
_DISCOVER_ORG = """
SELECT org_id, id FROM export_job
WHERE org_id = {org} AND (status = 'queued' OR (status = 'running' AND heartbeat_at < $1))
ORDER BY created_at LIMIT $2
"""
_EXPIRED_ORG = """
SELECT org_id, id FROM export_job
WHERE org_id = {org} AND status = 'done' AND expires_at <= $1 ORDER BY expires_at LIMIT $2
"""
_CLAIM = """
SELECT id, attempts, requested_by, requested_by_email FROM export_job
WHERE org_id = {org} AND id = $1 AND (status = 'queued' OR (status = 'running' AND heartbeat_at < $2))
FOR UPDATE SKIP LOCKED
"""
_START = """
UPDATE export_job
SET status = 'running', attempts = attempts + 1, started_at = $2, heartbeat_at = $2,
    progress = 0, records_done = 0, records_total = 0, error = NULL
WHERE org_id = {org} AND id = $1
RETURNING attempts
"""
_DELETE_CHUNKS = "DELETE FROM export_chunk WHERE org_id = {org} AND job_id = $1"
# Every write of a running job goes through the lease: same attempt, still running.
_HEARTBEAT = """
UPDATE export_job SET heartbeat_at = $3, records_done = $4, records_total = $5, progress = $6
WHERE org_id = {org} AND id = $1 AND status = 'running' AND attempts = $2
RETURNING id
"""
_INSERT_CHUNK = "INSERT INTO export_chunk (org_id, job_id, seq, data) VALUES ({org}, $1, $2, $3)"
_DONE = """
UPDATE export_job
SET status = 'done', progress = 100, records_done = $2, records_total = $2, size_bytes = $3, sha256 = $4,
    filename = $5, finished_at = $6, heartbeat_at = $6, expires_at = $7, error = NULL
WHERE org_id = {org} AND id = $1
"""
_FAIL = """
UPDATE export_job SET status = 'failed', error = $3, finished_at = $4, heartbeat_at = $4
WHERE org_id = {org} AND id = $1 AND status = 'running' AND attempts = $2
RETURNING id
"""
_ABANDON = """
UPDATE export_job SET status = 'failed', error = $2, finished_at = $3, heartbeat_at = $3
WHERE org_id = {org} AND id = $1
"""
_RELEASE = """
UPDATE export_job
SET status = 'queued', attempts = greatest(attempts - 1, 0), started_at = NULL, heartbeat_at = NULL,
    progress = 0, records_done = 0, records_total = 0
WHERE org_id = {org} AND id = $1 AND status = 'running' AND attempts = $2
RETURNING id
"""
_EXPIRE = """
UPDATE export_job SET status = 'expired'
WHERE org_id = {org} AND id = $1 AND status = 'done' AND expires_at <= $2
RETURNING id
"""
_ORG = "SELECT id, slug, name FROM organization WHERE id = {org}"


class LeaseLost(Exception):
    """The job was restarted by another worker, or deleted (with its org): stop quietly."""


@dataclass(frozen=True)
class Claim:
    job_id: UUID
    org_id: UUID
    attempt: int
    requested_by: UUID | None
    requested_by_email: str


class _ReadOnlySnapshot(PostgresTransaction):
    """A Piccolo transaction that is REPEATABLE READ and READ ONLY: one consistent view of the
    org for the whole archive, however long it takes to write."""

    async def begin(self) -> None:
        self.transaction = self.connection.transaction(isolation="repeatable_read", readonly=True)
        await self.transaction.start()


@asynccontextmanager
async def read_snapshot(org_id: UUID) -> AsyncIterator[TenantScope]:
    """The org's data as of now, through its scope (RLS set to the org, transaction-local)."""
    async with _ReadOnlySnapshot(db.engine(), allow_nested=False):
        yield await tenancy.enter(org_id)


async def in_tenant_transaction(org_id: UUID, fn: Callable[[TenantScope], Awaitable[Any]]) -> Any:
    """Run ``fn(scope)`` in a short transaction of its own for ``org_id`` — also while the caller
    holds another transaction open (it runs in a fresh context, on another pooled connection)."""

    async def run() -> Any:
        async with db.transaction(org_id=org_id):
            return await fn(await tenancy.enter(org_id))

    return await asyncio.create_task(run(), context=contextvars.Context())


async def _no_pages() -> AsyncIterator[list[dict]]:
    return
    yield  # pragma: no cover - makes this an async generator


class _Run:
    """One attempt at one job."""

    def __init__(self, worker: ExportWorker, claim: Claim):
        self.worker = worker
        self.claim = claim
        self.seq = 0
        self.done = 0
        self.total = 0
        self.last_write = time.monotonic()

    @property
    def progress(self) -> int:
        return min(99, self.done * 100 // self.total) if self.total else 0

    async def _lease(self, scope: TenantScope) -> None:
        held = await scope.fetchval(
            _HEARTBEAT, self.claim.job_id, self.claim.attempt, clock.now(), self.done, self.total, self.progress
        )
        if held is None:
            raise LeaseLost()

    async def heartbeat(self) -> None:
        await in_tenant_transaction(self.claim.org_id, self._lease)
        self.last_write = time.monotonic()

    async def write_chunk(self, data: bytes) -> None:
        seq = self.seq

        async def write(scope: TenantScope) -> None:
            await self._lease(scope)
            await scope.execute(_INSERT_CHUNK, self.claim.job_id, seq, data)

        await in_tenant_transaction(self.claim.org_id, write)
        self.seq += 1
        self.last_write = time.monotonic()
        if self.worker.after_flush is not None:
            await self.worker.after_flush()

    async def on_page(self, records: int) -> None:
        self.done += records
        if time.monotonic() - self.last_write >= self.worker.progress_every:
            await self.heartbeat()

    async def build(self) -> None:
        claim, worker = self.claim, self.worker
        generated_at = clock.now()
        async with read_snapshot(claim.org_id) as scope:
            org = await scope.fetchrow(_ORG)
            if org is None:
                raise LeaseLost()
            files = exporters()
            self.total = sum([await e.count(scope) if e.available() else 0 for e in files])
            await self.heartbeat()
            builder = ArchiveBuilder(self.write_chunk, generated_at=generated_at, chunk_size=worker.chunk_size)
            for exporter in files:
                pages = exporter.pages(scope, worker.page_size) if exporter.available() else _no_pages()
                await builder.add(exporter.filename, exporter.layout, pages, self.on_page)
            tail = await builder.close(
                {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "export_id": str(claim.job_id),
                    "organization": {"id": str(org["id"]), "slug": org["slug"], "name": org["name"]},
                    "generated_at": iso(generated_at),
                    "generated_by": {
                        "user_id": str(claim.requested_by) if claim.requested_by else None,
                        "email": claim.requested_by_email,
                    },
                }
            )
        filename = f"{org['slug']}-export-{generated_at:%Y%m%dT%H%M%SZ}.zip"
        size, sha256 = builder.size, builder.hexdigest()
        records = sum(f.records for f in builder.files)
        finished = clock.now()
        expires = finished + get_settings().export_ttl

        async def finish(scope: TenantScope) -> None:
            await self._lease(scope)
            if tail:
                await scope.execute(_INSERT_CHUNK, claim.job_id, self.seq, tail)
            await scope.execute(_DONE, claim.job_id, records, size, sha256, filename, finished, expires)
            await audit.record_as(
                scope, actor_id=None, actor_email=None, ip="", action=Action.EXPORT_COMPLETED,
                target=("export", claim.job_id, filename),
                after={"records": records, "size_bytes": size, "sha256": sha256, "expires_at": iso(expires),
                       "requested_by": claim.requested_by_email},
            )

        await in_tenant_transaction(claim.org_id, finish)
        log.info("export %s of org %s done: %d records, %d bytes", claim.job_id, org["slug"], records, size)

    async def fail(self, message: str) -> None:
        claim = self.claim

        async def fail(scope: TenantScope) -> None:
            if await scope.fetchval(_FAIL, claim.job_id, claim.attempt, message, clock.now()) is None:
                return
            await scope.execute(_DELETE_CHUNKS, claim.job_id)
            await audit.record_as(
                scope, actor_id=None, actor_email=None, ip="", action=Action.EXPORT_FAILED,
                target=("export", claim.job_id, ""), after={"error": message},
            )

        await in_tenant_transaction(claim.org_id, fail)

    async def release(self) -> None:
        """Give the job back to the queue (this process is stopping): another starts it afresh."""
        claim = self.claim

        async def release(scope: TenantScope) -> None:
            if await scope.fetchval(_RELEASE, claim.job_id, claim.attempt) is not None:
                await scope.execute(_DELETE_CHUNKS, claim.job_id)

        await in_tenant_transaction(claim.org_id, release)

    async def run(self) -> None:
        try:
            await self.build()
        except (LeaseLost, asyncpg.ForeignKeyViolationError):  # the job (or its org) is gone
            log.info("export %s: lease lost (restarted elsewhere, or the org was deleted)", self.claim.job_id)
        except asyncio.CancelledError:
            if self.worker.release_on_cancel:
                with suppress(Exception):
                    await asyncio.wait_for(self.release(), timeout=10)
            raise
        except Exception:
            log.exception("export %s failed", self.claim.job_id)
            with suppress(LeaseLost):
                await self.fail(FAILED_MESSAGE)


class ExportWorker(PollingWorker):
    name = "export-worker"

    def __init__(
        self,
        *,
        poll_interval: float = 1.0,
        page_size: int = 500,
        chunk_size: int = CHUNK_SIZE,
        stale_after: timedelta = timedelta(seconds=60),
        max_attempts: int = MAX_ATTEMPTS,
        purge_every: float = 60.0,
        progress_every: float = 1.0,
        release_on_cancel: bool = True,
    ):
        super().__init__(poll_interval=poll_interval, purge_every=purge_every)
        self.page_size = page_size
        self.chunk_size = chunk_size
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.progress_every = progress_every
        self.release_on_cancel = release_on_cancel
        # Test seam: awaited after every stored chunk (e.g. to pause a job half-way).
        self.after_flush: Callable[[], Awaitable[None]] | None = None

    # -- the queue --------------------------------------------------------------------------------
    async def _find(self, all_sql: str, org_sql: str, arg: Any, org_id: UUID | None, limit: int = 20) -> list[tuple[UUID, UUID]]:
        if org_id is not None:
            async with db.transaction(org_id=org_id):
                rows = await (await tenancy.enter(org_id)).fetch(org_sql, arg, limit)
        else:
            async with db.transaction() as conn:
                await conn.execute(WORKER_MODE)
                rows = await conn.fetch(all_sql, arg, limit)
        return [(r["org_id"], r["id"]) for r in rows]

    async def _claim(self, org_id: UUID, job_id: UUID) -> Claim | None | UUID:
        """Claim a job: a ``Claim`` to run, ``None`` if someone else has it, or the job id if it
        was given up (too many attempts) — which also counts as work done."""
        now = clock.now()
        async with db.transaction(org_id=org_id):
            scope = await tenancy.enter(org_id)
            row = await scope.fetchrow(_CLAIM, job_id, now - self.stale_after)
            if row is None:
                return None
            await scope.execute(_DELETE_CHUNKS, job_id)  # whatever a dead attempt left
            if row["attempts"] >= self.max_attempts:
                message = ABANDONED_MESSAGE.format(n=row["attempts"])
                await scope.execute(_ABANDON, job_id, message, now)
                await audit.record_as(
                    scope, actor_id=None, actor_email=None, ip="", action=Action.EXPORT_FAILED,
                    target=("export", job_id, ""), after={"error": message},
                )
                log.warning("export %s abandoned after %d attempts", job_id, row["attempts"])
                return job_id
            attempt = await scope.fetchval(_START, job_id, now)
        return Claim(job_id, org_id, attempt, row["requested_by"], row["requested_by_email"])

    async def run_once(self, org_id: UUID | None = None) -> UUID | None:
        """Claim one job (of ``org_id``, or of any org) and build it. Returns its id, or None if
        there was nothing to do."""
        candidates = await self._find(_DISCOVER_ALL, _DISCOVER_ORG, clock.now() - self.stale_after, org_id)
        for cand_org, job_id in candidates:
            claim = await self._claim(cand_org, job_id)
            if claim is None:
                continue
            if isinstance(claim, Claim):
                await _Run(self, claim).run()
            return job_id
        return None

    async def purge_expired(self, org_id: UUID | None = None) -> int:
        """Delete the chunks of archives past their expiry; returns how many were purged."""
        purged = 0
        while True:
            now = clock.now()
            expired = await self._find(_EXPIRED_ALL, _EXPIRED_ORG, now, org_id, limit=100)
            before = purged
            for job_org, job_id in expired:
                async with db.transaction(org_id=job_org):
                    scope = await tenancy.enter(job_org)
                    if await scope.fetchval(_EXPIRE, job_id, now) is not None:
                        await scope.execute(_DELETE_CHUNKS, job_id)
                        purged += 1
            if len(expired) < 100 or purged == before:
                return purged

    # -- the background loop (portal.jobs) ------------------------------------------------------
    async def work_once(self) -> bool:
        return await self.run_once() is not None

    async def purge(self) -> None:
        await self.purge_expired()
