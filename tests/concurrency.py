"""Making interleavings exact rather than hoped for (no tests here): a gate that holds a members
service call at a named checkpoint (the ``gate`` fixture in ``tests/members/conftest.py``), a
gate that holds an export job after a stored chunk, and a wait for a backend blocked on a lock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from portal.exports.worker import ExportWorker


@dataclass
class CheckpointGate:
    """Holds service calls at named checkpoints until released, or fails them there."""

    waits: dict = field(default_factory=dict)  # name -> (reached, release)
    failures: dict = field(default_factory=dict)  # name -> exception
    also: object = None  # an async callable run at every checkpoint (to act inside the request)

    def hold(self, name: str) -> tuple[asyncio.Event, asyncio.Event]:
        self.waits[name] = (asyncio.Event(), asyncio.Event())
        return self.waits[name]

    def fail(self, name: str, exc: BaseException) -> None:
        self.failures[name] = exc

    async def __call__(self, name: str) -> None:
        if self.also is not None:
            await self.also(name)
        if name in self.failures:
            raise self.failures.pop(name)
        if name in self.waits:
            reached, release = self.waits.pop(name)
            reached.set()
            await release.wait()


async def wait_until_blocked_on_lock(su, timeout: float = 5.0, count: int = 1, usename: str | None = "portal_app") -> None:
    """Wait until ``count`` backends (of the app role, by default) are waiting for a lock."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        n = await su.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND ($1::text IS NULL OR usename = $1)",
            usename,
        )
        if n >= count:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no request is waiting for a lock")
        await asyncio.sleep(0.01)


# -- export jobs paused in the middle -------------------------------------------------------------

STALE = timedelta(seconds=60)


class ChunkGate:
    """Awaited after each stored chunk: lets ``after`` chunks through, then holds the job."""

    def __init__(self, after: int = 2):
        self.after = after
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1
        if self.count == self.after:
            self.reached.set()
            await self.release.wait()


def paused_worker(gate: ChunkGate, **kw) -> ExportWorker:
    worker = ExportWorker(page_size=100, chunk_size=4096, stale_after=STALE, **kw)
    worker.after_flush = gate
    return worker


async def start_paused(worker: ExportWorker, gate: ChunkGate, org) -> asyncio.Task:
    task = asyncio.create_task(worker.run_once(org_id=org.id))
    await asyncio.wait_for(gate.reached.wait(), timeout=60)
    return task
