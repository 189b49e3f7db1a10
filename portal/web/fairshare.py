"""A fair share of each worker process: at most N requests in flight per principal.

A worker serves its requests in turn; one account that keeps two dozen requests in flight (a
script polling a page, or a tab gone wild) would otherwise take two dozen turns for every one
of everybody else's — the noisy-neighbour benchmark measured a victim's p50 going from 38 ms to
900 ms under such a flood of cheap, allowed pages. So each principal (the signed-in account, or
the client address for anonymous requests) gets ``PER_PRINCIPAL_CONCURRENCY`` requests in flight
per process; one more is answered at once with 429 and ``Retry-After``, before it costs a
transaction. A browser rarely has more than a handful of requests open to one site.

In memory and per process on purpose: it limits concurrency, not volume, and concurrency is a
property of one process (quotas over time live in PostgreSQL: ``portal.ratelimit``).
"""

from __future__ import annotations

from collections import Counter

from litestar.types import ASGIApp, Receive, Scope, Send

from portal.config import get_settings
from portal.errors import TooManyRequests
from portal.tenancy.context import client_ip

MESSAGE = "Too many requests at once from your account. Wait for the others to finish and try again."
# One count per process (Litestar builds a middleware instance per route, so not on the instance).
_in_flight: Counter[str] = Counter()


class FairShareMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        user = scope.get("user")
        key = f"user:{user.id}" if user is not None else f"client:{client_ip(scope)}"
        if _in_flight[key] >= get_settings().per_principal_concurrency:
            raise TooManyRequests(MESSAGE, retry_after=1)
        _in_flight[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            _in_flight[key] -= 1
            if not _in_flight[key]:
                del _in_flight[key]
