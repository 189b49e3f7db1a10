"""Work that runs after the request: sending mail without holding the request or its transaction.

Tasks start in an empty context, so they never inherit the request's open transaction (Piccolo
keeps it in a context variable) and open their own. They are kept referenced until done; a crash
is logged, never raised into the request. ``settle`` lets a page wait briefly for the outcome of
work it started; ``drain`` waits for everything (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine, Hashable, Iterable
from typing import Any

log = logging.getLogger("portal.mail")

_tasks: dict[asyncio.Task, Hashable | None] = {}


async def _guarded(coro: Coroutine[Any, Any, Any], what: str) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task failed: %s", what)


def spawn(coro: Coroutine[Any, Any, Any], *, what: str, key: Hashable | None = None) -> asyncio.Task:
    """Run ``coro`` in the background. ``what`` names it in logs (never put a token in it)."""
    task = asyncio.get_running_loop().create_task(_guarded(coro, what), context=contextvars.Context())
    _tasks[task] = key
    task.add_done_callback(lambda t: _tasks.pop(t, None))
    return task


def running_keys() -> list[Hashable]:
    return [k for k in _tasks.values() if k is not None]


async def settle(keys: Iterable[Hashable], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the running tasks started with one of ``keys``."""
    wanted = set(keys)
    pending = [t for t, k in _tasks.items() if k is not None and k in wanted]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


async def drain(timeout: float = 30.0) -> None:
    """Wait for every background task (including ones started while waiting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _tasks:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.wait(list(_tasks), timeout=remaining)
