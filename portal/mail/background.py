"""Work that runs after the request: sending mail without holding the request or its transaction.

Tasks start in an empty context, so they never inherit the request's open transaction (Piccolo
keeps it in a context variable) and open their own. They are kept referenced until done; a crash
is logged, never raised into the request. ``drain`` waits for everything (tests, shutdown);
no request ever waits for this work (it would hold a pooled connection while it does).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("portal.mail")

_tasks: set[asyncio.Task] = set()


async def _guarded(coro: Coroutine[Any, Any, Any], what: str) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task failed: %s", what)


def spawn(coro: Coroutine[Any, Any, Any], *, what: str) -> asyncio.Task:
    """Run ``coro`` in the background. ``what`` names it in logs (never put a token in it)."""
    task = asyncio.get_running_loop().create_task(_guarded(coro, what), context=contextvars.Context())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def drain(timeout: float = 30.0) -> None:
    """Wait for every background task (including ones started while waiting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _tasks:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.wait(list(_tasks), timeout=remaining)
