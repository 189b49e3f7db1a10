"""argon2id password hashing, off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against when the account doesn't exist, so both cases cost the same time.
_DUMMY = _hasher.hash("not-a-real-password-just-for-timing")


# argon2id takes ~64 MiB and tens of ms per hash: bound how many run at once per process.
_slots = asyncio.Semaphore(4)


async def hash_password(password: str) -> str:
    async with _slots:
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async with _slots:
        return await asyncio.to_thread(check)
