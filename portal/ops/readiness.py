"""``GET /readyz``: this process can serve — the database answers, and has every migration this
release ships. A load balancer stops sending traffic on 503 (unlike ``/healthz``, which says only
that the process is alive)."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any

from portal.config import ROOT
from portal.db import engine as db

CHECK_TIMEOUT = 2.0  # seconds: a readiness probe must answer fast either way

_ID = re.compile(r'^ID = "([^"]+)"', re.MULTILINE)


@lru_cache(maxsize=1)
def shipped_migrations() -> frozenset[str]:
    """The ids of the migrations in this release (``migrations/*.py``)."""
    ids = set()
    for path in (ROOT / "migrations").glob("portal_*.py"):
        if match := _ID.search(path.read_text()):
            ids.add(match.group(1))
    return frozenset(ids)


async def check() -> tuple[bool, dict[str, Any]]:
    """(ready, details). Never raises: whatever goes wrong is a reason to be not ready."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with db.connection() as conn:
                applied = set(await conn.fetchval("SELECT applied_migrations()"))
    except Exception as exc:  # unreachable, restarting, pool exhausted, not migrated at all
        return False, {"database": "unavailable", "reason": type(exc).__name__}
    pending = sorted(shipped_migrations() - applied)
    if pending:
        return False, {"database": "ok", "migrations": "pending", "pending": pending}
    return True, {"database": "ok", "migrations": "current"}
