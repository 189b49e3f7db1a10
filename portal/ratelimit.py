"""Quotas and rate limits per principal (client address, account), counted in PostgreSQL
(``rate_hit``). Inside a request's transaction a hit commits or rolls back with it, so a refused
or failed action counts nothing.

Counting in the database makes a limit hold across workers and hosts. Each bucket is serialized
with a transaction-level advisory lock, so concurrent hits cannot all slip under the limit.
Refused attempts are not recorded: a client regains one attempt as each old hit leaves the window.
"""

from __future__ import annotations

import ipaddress
import math
import random
from datetime import timedelta

from portal import clock
from portal.db import engine as db
from portal.errors import TooManyRequests

# Rows older than this are never needed by any limit here (the longest window is a day); stale
# buckets are swept now and then.
_KEEP = timedelta(days=2)


def client_key(ip: str) -> str:
    """The unit every per-client limit counts: an IPv4 address, or an IPv6 /64. One customer of an
    ISP or a cloud gets a whole /64 and can send from any address in it, so counting single IPv6
    addresses would give one machine 2^64 budgets."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64] or "unknown"
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def hit_client(kind: str, ip: str, *, limit: int, window: timedelta, message: str) -> None:
    """``hit`` on the client's bucket of ``kind`` (its network: ``client_key``)."""
    await hit(f"{kind}:{client_key(ip)}", limit=limit, window=window, message=message)


async def hit(bucket: str, *, limit: int, window: timedelta, message: str) -> None:
    """Record one hit on ``bucket`` ("kind:client"), or raise ``TooManyRequests`` if it is full."""
    bucket = bucket[:200]
    now = clock.now()
    since = now - window
    async with db.connection() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "rate_hit:" + bucket)
            await conn.execute("DELETE FROM rate_hit WHERE bucket = $1 AND at <= $2", bucket, since)
            row = await conn.fetchrow("SELECT count(*) AS n, min(at) AS oldest FROM rate_hit WHERE bucket = $1 AND at > $2", bucket, since)
            if row["n"] >= limit:
                retry = (row["oldest"] + window - now).total_seconds() if row["oldest"] else window.total_seconds()
                raise TooManyRequests(message, retry_after=math.ceil(retry))
            await conn.execute("INSERT INTO rate_hit (bucket, at) VALUES ($1, $2)", bucket, now)
            if random.random() < 0.01:  # buckets of clients that never came back
                prefix = bucket.split(":", 1)[0] + ":"
                await conn.execute("DELETE FROM rate_hit WHERE at < $1 AND starts_with(bucket, $2)", now - _KEEP, prefix)
