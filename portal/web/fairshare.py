"""A fair share of each worker process: a bounded number of requests in flight per principal.

A worker serves its requests in turn; one account that keeps two dozen requests in flight (a
script polling a page, or a tab gone wild) would otherwise take two dozen turns for every one
of everybody else's — the noisy-neighbour benchmark measured a victim's p50 going from 38 ms to
900 ms under such a flood of cheap, allowed pages. So:

* each client network (``ratelimit.client_key``: an IPv4 address or an IPv6 /64) gets
  ``PER_CLIENT_CONCURRENCY`` requests in flight, counted before anything else — before the
  session lookup, so a flood with junk cookies costs no database turn;
* each signed-in account gets ``PER_PRINCIPAL_CONCURRENCY``, counted once the session is known;
  so does each API token presented (``portal.api.auth``), counted before its lookup.

One more is answered at once with 429 and ``Retry-After``. A browser rarely has more than a
handful of requests open to one site; an office behind one address gets the larger budget.

In memory and per process on purpose: it limits concurrency, not volume, and concurrency is a
property of one process (quotas over time live in PostgreSQL: ``portal.ratelimit``).
"""

from __future__ import annotations

from collections import Counter

from litestar.types import ASGIApp, Receive, Scope, Send

from portal.config import get_settings
from portal.errors import TooManyRequests
from portal.ratelimit import client_key
from portal.tenancy.context import client_ip

TOKEN_MESSAGE = "Too many calls at once with this token. Wait for the others to finish and try again."
ACCOUNT_MESSAGE = "Too many requests at once from your account. Wait for the others to finish and try again."
CLIENT_MESSAGE = "Too many requests at once from your network. Wait for the others to finish and try again."
# One count per process (Litestar builds a middleware instance per route, so not on the instance).
_in_flight: Counter[str] = Counter()


async def within_share(key: str, limit: int, message: str, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    if _in_flight[key] >= limit:
        raise TooManyRequests(message, retry_after=1)
    _in_flight[key] += 1
    try:
        await app(scope, receive, send)
    finally:
        _in_flight[key] -= 1
        if not _in_flight[key]:
            del _in_flight[key]


def _counted(scope: Scope) -> bool:
    return scope["type"] == "http" and not scope["path"].startswith("/static/")


class ClientShareMiddleware:
    """Per client network; runs before the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _counted(scope):
            await self.app(scope, receive, send)
            return
        key = f"client:{client_key(client_ip(scope))}"
        await within_share(key, get_settings().per_client_concurrency, CLIENT_MESSAGE, self.app, scope, receive, send)


class FairShareMiddleware:
    """Per signed-in account; runs after the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not _counted(scope) or user is None:
            await self.app(scope, receive, send)
            return
        key = f"user:{user.id}"
        await within_share(key, get_settings().per_principal_concurrency, ACCOUNT_MESSAGE, self.app, scope, receive, send)
