"""``GET /readyz``: this process can serve — the database answers, and has every migration this
release ships. A load balancer stops sending traffic on 503 (unlike ``/healthz``, which says only
that the process is alive).

The answer is only ready or not: why not (an exception, the ids of pending migrations) goes to the
log, not to whoever asks. It is kept for ``CACHE_SECONDS``, and concurrent probes share one check,
so a flood of probes costs at most one pooled connection and one query a second per process.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from functools import lru_cache

from portal.config import ROOT
from portal.db import engine as db
from portal.errors import Unavailable

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds: a readiness probe must answer fast either way
CACHE_SECONDS = 1.0
MIGRATIONS = ROOT / "migrations"

_ID = re.compile(r'^ID = "([^"]+)"', re.MULTILINE)

_last: tuple[float, bool] | None = None  # (monotonic time checked, ready)
_lock: asyncio.Lock | None = None


@lru_cache(maxsize=1)
def shipped_migrations() -> frozenset[str]:
    """The ids of the migrations in this release (``migrations/*.py``). Raises if there are none
    to be found: a release that cannot tell what it needs cannot say it is ready."""
    ids = set()
    for path in MIGRATIONS.glob("portal_*.py"):
        if match := _ID.search(path.read_text()):
            ids.add(match.group(1))
    if not ids:
        raise FileNotFoundError(f"no migrations found in {MIGRATIONS}")
    return frozenset(ids)


def forget() -> None:
    """Drop the remembered answer (tests; the next probe checks again)."""
    global _last
    _last = None


async def ready() -> bool:
    """Whether this process can serve, as checked at most ``CACHE_SECONDS`` ago. Never raises."""
    global _last, _lock
    if _last is not None and time.monotonic() - _last[0] < CACHE_SECONDS:
        return _last[1]
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _last is not None and time.monotonic() - _last[0] < CACHE_SECONDS:
            return _last[1]  # checked while this probe waited for the lock
        ok = await check()
        if ok is None:  # busy, not broken: the last answer stands (none yet: not ready)
            ok = _last[1] if _last is not None else False
        _last = (time.monotonic(), ok)
        return ok


def _pool_busy() -> bool:
    """Every connection of this process's pool is in use (requests are waiting for one)."""
    pool = db.engine().pool
    return pool is not None and pool.get_idle_size() == 0 and pool.get_size() >= pool.get_max_size()


async def check() -> bool | None:
    """Check now; the reason for not being ready is logged (warning). None when the check could
    not get a connection because every one is serving a request: a busy process is still ready
    (pulling it would move its load onto the others), a broken database shows as an error."""
    try:
        shipped = shipped_migrations()
    except Exception as exc:
        log.warning("not ready: the release's migrations cannot be listed (%s: %s)", type(exc).__name__, exc)
        return False
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with db.connection() as conn:
                applied = set(await conn.fetchval("SELECT applied_migrations()"))
    except (TimeoutError, Unavailable):  # no answer in time, or no pooled connection in time
        if _pool_busy():
            log.info("readiness: every pooled connection is serving a request; the last answer stands")
            return None
        log.warning("not ready: the database did not answer within %.0f s", CHECK_TIMEOUT)
        return False
    except Exception as exc:  # unreachable, restarting, not migrated at all
        log.warning("not ready: the database is unavailable (%s: %s)", type(exc).__name__, exc)
        return False
    if pending := sorted(shipped - applied):
        log.warning("not ready: migrations pending: %s", ", ".join(pending))
        return False
    return True
