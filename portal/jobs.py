"""The background loop every job queue in PostgreSQL runs in each app process (exports, mail).

A queue says what one round of work is (``work_once``: True if it did something) and what its
housekeeping is (``purge``); the loop does the rest the same way for all: work while there is
work, sleep ``poll_interval`` when there is none, purge every ``purge_every`` seconds, survive a
bad moment of the database, and stop when the process does (``stop`` cancels the round in flight,
which each queue hands back in its own way). The queues themselves share one pattern: discovery
across orgs under a read-only policy, a claim inside the tenant's transaction with
``FOR UPDATE SKIP LOCKED``, and the attempt number as the lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

log = logging.getLogger("portal.jobs")


class PollingWorker:
    name = "worker"

    def __init__(self, *, poll_interval: float, purge_every: float) -> None:
        self.poll_interval = poll_interval
        self.purge_every = purge_every
        self._task: asyncio.Task | None = None

    async def work_once(self) -> bool:
        raise NotImplementedError

    async def purge(self) -> None:
        """Housekeeping (expired archives, finished mail)."""

    async def run_forever(self) -> None:
        last_purge = 0.0
        while True:
            worked = False
            try:
                if time.monotonic() - last_purge >= self.purge_every:
                    await self.purge()
                    last_purge = time.monotonic()
                worked = await self.work_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad moment of the database must not end the worker
                log.exception("%s iteration failed", self.name)
            if not worked:
                await asyncio.sleep(self.poll_interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
