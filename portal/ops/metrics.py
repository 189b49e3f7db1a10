"""Prometheus metrics (``GET /metrics`` with the ``METRICS_TOKEN`` bearer).

Counted in this process as requests pass: requests by route (the handler's name, so ids never
make new series) and status, and their latency. Read when scraped: the connection pool (size, in
use, idle, waiting for one), and from the database — so the same in every process — the jobs by
kind and status (exports; mail of the outbox) and the outbox's backlog and oldest waiting mail.

Each worker process keeps its own counters (a scrape reaches one of them): scrape each process
(e.g. one port per worker) or add the series up in Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from portal import clock
from portal.db import engine as db
from portal.exports import worker as export_worker
from portal.exports.tables import STATUSES as EXPORT_STATUSES
from portal.mail import queue as mail_queue
from portal.mail.tables import STATUSES as MAIL_STATUSES
from portal.web.sentstatus import SentStatus

log = logging.getLogger(__name__)
DB_TIMEOUT = 2.0  # seconds: a scrape answers, with what this process knows, even while the database doesn't

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("portal_http_requests", "HTTP requests, by route name, method and status.", ["route", "method", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "portal_http_request_duration_seconds", "Time to answer an HTTP request, by route name.", ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)
POOL = Gauge("portal_db_pool_connections", "This process's database pool: max, size, in_use, idle, waiting.", ["state"], registry=REGISTRY)
JOBS = Gauge("portal_jobs", "Background jobs by kind (export, mail) and status.", ["kind", "status"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("portal_outbox_backlog", "Mail queued or being sent.", registry=REGISTRY)
OUTBOX_OLDEST = Gauge("portal_outbox_oldest_age_seconds", "Age of the oldest mail still waiting to be sent (0 when none).", registry=REGISTRY)
DB_UP = Gauge("portal_db_up", "1 when this scrape read the database's figures, 0 when it could not (they keep their last values).", registry=REGISTRY)

# Cross-org counts, under the workers' read-only queue policies (export_worker_queue,
# mail_outbox_worker_queue): entered with the workers' own statements.
_EXPORTS = "SELECT status, count(*) AS n FROM export_job GROUP BY status"  # unscoped: counts across orgs (read-only policy)
_MAIL = (
    "SELECT status, count(*) AS n, min(created_at) AS oldest FROM ("  # unscoped: counts across orgs (read-only policy)
    "SELECT status, created_at FROM mail_outbox UNION ALL SELECT status, created_at FROM account_mail) m GROUP BY status"
)


# The methods counted by name; any other a client sends (servers accept any token) is "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts each request under its route's name (``unmatched`` when no route matched) and the
    status actually sent. Wrapped around the app's outermost exception handler (``create_app``),
    so an error a middleware raises (CSRF 403, rate limit 429) counts as the answer it became."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, sent = time.perf_counter(), SentStatus(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            handler = scope.get("route_handler")
            route = getattr(handler, "name", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"  # a client invents no series
            REQUESTS.labels(route, method, str(sent.status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


async def collect() -> None:
    """Refresh the gauges read at scrape time."""
    pool = db.engine().pool
    if pool is not None:
        size, idle = pool.get_size(), pool.get_idle_size()
        for state, value in (("max", pool.get_max_size()), ("size", size), ("idle", idle), ("in_use", size - idle), ("waiting", pool.waiting)):
            POOL.labels(state).set(value)
    try:
        async with asyncio.timeout(DB_TIMEOUT), db.transaction() as conn:
            await conn.execute(export_worker.WORKER_MODE)
            await conn.execute(mail_queue.WORKER_MODE)
            exports = {r["status"]: r["n"] for r in await conn.fetch(_EXPORTS)}
            mail = await conn.fetch(_MAIL)
    except Exception as exc:  # the request counters and the pool matter most while the database is away
        log.warning("metrics: the database's figures could not be read (%s: %s)", type(exc).__name__, exc)
        DB_UP.set(0)
        return
    DB_UP.set(1)
    for status in EXPORT_STATUSES:
        JOBS.labels("export", status).set(exports.get(status, 0))
    by_status = {r["status"]: r for r in mail}
    for status in MAIL_STATUSES:
        JOBS.labels("mail", status).set(by_status[status]["n"] if status in by_status else 0)
    waiting = [r for r in mail if r["status"] in ("queued", "sending")]
    OUTBOX_BACKLOG.set(sum(r["n"] for r in waiting))
    oldest = min((r["oldest"] for r in waiting if r["oldest"]), default=None)
    OUTBOX_OLDEST.set(max(0.0, (clock.now() - oldest).total_seconds()) if oldest else 0)
