"""argon2id password hashing, off the event loop and below it in CPU priority.

A hash costs ~64 MiB and tens of ms of CPU on several threads (argon2's lanes), and anyone can
make us compute one (sign-in, sign-up, re-authentication). Left at normal priority, a burst of
wrong passwords takes every core from the event loop and every other org's pages wait behind it
(bench/noisy.py measured a victim's p50 go from 30 ms to 4.5 s). So hashes run on a few
threads of their own whose scheduling priority is lowered (``nice``, inherited by argon2's lane
threads): they use the CPU the pages leave over. Callers must not hold a pooled connection while
they wait for one (``forbid_while_holding``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from portal.db.engine import forbid_while_holding

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against when the account doesn't exist, so both cases cost the same time.
_DUMMY = _hasher.hash("not-a-real-password-just-for-timing")

SLOTS = 4  # hashes at once per process (memory: SLOTS × 64 MiB)
NICENESS = 10  # how far below the event loop hashing runs (0 = same priority, 19 = lowest)
T = TypeVar("T")


def _lower_priority() -> None:
    """Thread initializer: lower this thread's priority (Linux: per thread, inherited by the
    threads it starts). Where the platform can't, hashing simply runs at normal priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    except (AttributeError, OSError):
        pass


_executor = ThreadPoolExecutor(max_workers=SLOTS, thread_name_prefix="argon2", initializer=_lower_priority)


async def _run(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, fn)


async def hash_password(password: str) -> str:
    forbid_while_holding("hashing a password")  # a queue for a slot must never pin a connection
    return await _run(lambda: _hasher.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    forbid_while_holding("verifying a password")
    return await _run(check)
