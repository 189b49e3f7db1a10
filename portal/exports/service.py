"""Export requests, the rate limit, the export list, and reading a finished archive back."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, AsyncContextManager, AsyncIterator, Callable
from uuid import UUID

from portal import clock, humanize
from portal.audit import service as audit
from portal.audit.actions import Action
from portal.config import get_settings
from portal.errors import NotFound, TooManyRequests
from portal.exports.exporters import exporters
from portal.params import parse_id
from portal.tenancy.context import OrgContext, org_transaction
from portal.tenancy.scope import TenantScope

RATE_WINDOW = timedelta(hours=1)
# pg_advisory_xact_lock(class, key): one lock per org for "count, then insert" of export requests.
RATE_LOCK_CLASS = 0x45585054  # "EXPT"
HISTORY = 25

_RATE_LOCK = "SELECT pg_advisory_xact_lock($1, hashtext({org}::text))"
_RECENT = "SELECT created_at FROM export_job WHERE org_id = {org} AND created_at > $1 ORDER BY created_at"
_INSERT = """
INSERT INTO export_job (org_id, requested_by, requested_by_email, created_at)
VALUES ({org}, $1, $2, $3)
RETURNING id
"""
_COLUMNS = """id, status, progress, records_done, records_total, error, size_bytes, sha256, filename,
requested_by_email, created_at, started_at, finished_at, expires_at"""
_LIST = f"SELECT {_COLUMNS} FROM export_job WHERE org_id = {{org}} ORDER BY created_at DESC, id DESC LIMIT $1"
_ONE = f"SELECT {_COLUMNS} FROM export_job WHERE org_id = {{org}} AND id = $1"
_CHUNK = """
SELECT seq, data FROM export_chunk
WHERE org_id = {org} AND job_id = $1 AND seq > $2
ORDER BY seq LIMIT 1
"""

STATUS_LABELS = {
    "queued": "Queued",
    "running": "Building",
    "done": "Ready",
    "failed": "Failed",
    "expired": "Expired",
}


def _view(row: Any) -> dict:
    job = dict(row)
    now = clock.now()
    status = job["status"]
    if status == "done" and job["expires_at"] is not None and job["expires_at"] <= now:
        status = "expired"  # not purged yet, but no longer offered
    job.update(
        status=status,
        status_label=STATUS_LABELS.get(status, status),
        active=status in ("queued", "running"),
        downloadable=status == "done",
        size_label=humanize.size(job["size_bytes"]),
    )
    return job


# -- requesting ---------------------------------------------------------------------------------
async def _recent(scope: TenantScope) -> list:
    return await scope.fetch(_RECENT, clock.now() - RATE_WINDOW)


def _retry_after(recent: list, rate: int) -> int:
    """Seconds until enough of the counted requests leave the window for one more."""
    frees_at = recent[len(recent) - rate]["created_at"] + RATE_WINDOW
    return max(1, math.ceil((frees_at - clock.now()).total_seconds()))


async def request_export(ctx: OrgContext) -> UUID:
    """Queue an export of the org, within ``EXPORT_RATE`` per org per hour.

    The count and the insert run under a per-org advisory lock held to the end of the request's
    transaction, so concurrent requests — from any process — are counted one after the other.
    """
    rate = get_settings().export_rate
    if rate <= 0:
        raise TooManyRequests("Data exports are turned off on this portal.", 3600)
    scope = ctx.scope
    await scope.execute(_RATE_LOCK, RATE_LOCK_CLASS)
    recent = await _recent(scope)
    if len(recent) >= rate:
        retry = _retry_after(recent, rate)
        raise TooManyRequests(
            f"Your organization can request {rate} export{'s' if rate != 1 else ''} per hour, and that many "
            f"were requested in the last hour. You can request the next one in {humanize.wait(retry)}.",
            retry,
        )
    job_id = await scope.fetchval(_INSERT, ctx.user_id, ctx.user_email, clock.now())
    await audit.record(ctx, Action.EXPORT_REQUESTED, target=("export", job_id, ""), after={"files": [e.filename for e in exporters()]})
    return job_id


# -- reading ------------------------------------------------------------------------------------
async def exports_page(ctx: OrgContext) -> dict:
    rate = get_settings().export_rate
    recent = await _recent(ctx.scope)
    remaining = max(0, rate - len(recent))
    retry = _retry_after(recent, rate) if rate > 0 and not remaining else None
    jobs = [_view(r) for r in await ctx.scope.fetch(_LIST, HISTORY)]
    return {
        "jobs": jobs,
        "rate": rate,
        "remaining": remaining,
        "next_in": humanize.wait(retry) if retry else None,
        "ttl_label": humanize.duration(get_settings().export_ttl),
        "files": [e.filename for e in exporters()],
    }


async def get_job(ctx: OrgContext, export_id: str) -> dict:
    row = await ctx.scope.fetchrow(_ONE, parse_id(export_id))
    if row is None:
        raise NotFound()
    return _view(row)


async def open_download(ctx: OrgContext, export_id: str, *, head: bool = False) -> dict:
    """The job, if its archive is complete and not expired (and audit the download, unless the
    request is a HEAD that downloads nothing); else 404."""
    job = await get_job(ctx, export_id)
    if not job["downloadable"]:
        raise NotFound("This export is not available for download. It may still be in progress, have failed, or have expired.")
    if head:
        return job
    await audit.record(
        ctx, Action.EXPORT_DOWNLOADED, target=("export", job["id"], job["filename"]),
        after={"size_bytes": job["size_bytes"], "sha256": job["sha256"]},
    )
    return job


async def archive_chunks(
    ctx: OrgContext, job_id: UUID, transaction: Callable[[OrgContext], AsyncContextManager[OrgContext]] = org_transaction
) -> AsyncIterator[bytes]:
    """The archive's bytes, one stored chunk at a time, in order: each chunk is read in a short
    transaction of its own and sent after it ends, so a slow reader holds no connection.
    ``transaction``: how each one enters the org again (a person's membership by default; the
    JSON API's token with ``portal.api.orgdata``)."""
    seq = -1
    while True:
        async with transaction(ctx) as current:
            row = await current.scope.fetchrow(_CHUNK, job_id, seq)
        if row is None:
            return
        seq = row["seq"]
        yield row["data"]
