"""``/api/v1/orgs/{slug}/audit-events``, ``…/exports`` and ``…/billing`` (SPEC §11): the audit log,
data exports and billing settings as JSON, with the pages' rules (``portal.audit.queries``,
``portal.exports.service``, ``portal.billing.service``), permissions and audit events.

* ``GET /audit-events``: the log newest first, with the audit page's filters (``actor``,
  ``action``, ``from``, ``to``; 422 for ones that make no sense), a keyset page at a time;
* ``POST /exports``: 202 with ``Location`` (the job's status); ``Idempotency-Key`` honoured; the
  export rate → 429 with ``Retry-After``;
* ``GET /exports``, ``GET /exports/{id}``: the recent jobs, one job's status;
* ``GET /exports/{id}/download``: the archive (``application/zip``), streamed like the page's
  download: checked and audited in a short transaction, then one stored chunk per transaction of
  its own, each entering the org again with the token (revoked mid-download: no further chunk);
  404 while the archive is not ready, failed or expired;
* ``GET /billing``: the settings and the seats in use, with ``ETag``;
* ``PATCH /billing``: only the fields given change; ``If-Match`` → 412; 422 as on the page.
"""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, AsyncIterator, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.types import Scope
from msgspec import Meta

from portal import clock
from portal.api import common, limits
from portal.api.auth import enter_token
from portal.api.resource import IdempotencyKey, Limit
from portal.audit import queries
from portal.audit.redact import in_audit_event
from portal.billing import service as billing
from portal.db import engine as db
from portal.errors import NotFound
from portal.exports import service as exports
from portal.invites.service import seat_usage
from portal.params import decode_cursor, encode_cursor
from portal.tenancy.context import OrgContext
from portal.tenancy.permissions import Perm
from portal.web.head import is_head
from portal.web.problems import documented

AUDIT = {"permission": Perm.AUDIT}
EXPORT = {"permission": Perm.EXPORT}
BILLING = {"permission": Perm.BILLING}


# -- audit events ----------------------------------------------------------------------------------

class AuditActor(msgspec.Struct):
    """Who acted: a person, or for a program's call the person who created its token; both null for the system."""

    id: UUID | None
    email: str | None


class AuditTarget(msgspec.Struct):
    type: str | None  # "membership", "agent", "invite" …
    id: str | None
    label: str | None


class AuditEvent(msgspec.Struct):
    id: UUID
    at: datetime
    action: str
    actor: AuditActor
    actor_token_id: UUID | None  # the API token that acted, if a program did
    actor_label: str | None  # how the log names that token (or agent)
    target: AuditTarget | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None


class AuditPage(msgspec.Struct):
    """A page of audit events, newest first; ``next`` is the next (older) page's URL, or null on the last page."""

    items: list[AuditEvent]
    next: str | None


def _change(action: str, value: Any) -> dict[str, Any] | None:
    """An event's before/after as every reader sees it (credential-looking values blanked)."""
    shown = in_audit_event(action, json.loads(value) if isinstance(value, str) else value)
    if shown is None or isinstance(shown, dict):
        return shown
    return {"value": shown}  # events record objects; anything else, kept whole


def audit_event(row: Any) -> AuditEvent:
    parts = (row["target_type"], row["target_id"], row["target_label"])
    target = AuditTarget(*parts) if any(p is not None for p in parts) else None
    return AuditEvent(
        row["id"], row["created_at"], row["action"], AuditActor(row["actor_id"], row["actor_email"]), row["actor_token_id"],
        row["actor_label"], target, _change(row["action"], row["before"]), _change(row["action"], row["after"]), row["ip"],
    )


@get("/audit-events", name="api.audit_events.list", opt=AUDIT, responses=documented(422))
async def audit_event_list(
    request: Request,
    org: NamedDependency[OrgContext],
    limit: Limit = common.DEFAULT_LIMIT,
    after: FromQuery[str | None] = None,
    actor: Annotated[str | None, QueryParameter(description="The email of who acted (for a program's call: its token's creator)")] = None,
    action: Annotated[str | None, QueryParameter(description="One action, e.g. member.role_changed")] = None,
    date_from: Annotated[str | None, QueryParameter(name="from", description="From this day on (UTC), e.g. 2026-01-31")] = None,
    date_to: Annotated[str | None, QueryParameter(name="to", description="Up to and including this day (UTC), e.g. 2026-01-31")] = None,
) -> AuditPage:
    """The organization's audit log, newest first, a page at a time, filtered like the audit page
    (422 for a filter that makes no sense: a malformed action or date, or ``to`` before ``from``)."""
    filters = queries.parse_filters({"actor": actor or "", "action": action or "", "from": date_from or "", "to": date_to or ""})
    rows, more = await queries.fetch_events(org, filters, after=decode_cursor(after, datetime, UUID), limit=limit)
    cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    query = {"actor": filters.actor, "action": filters.action, "from": filters.date_from, "to": filters.date_to}
    return AuditPage([audit_event(r) for r in rows], common.next_link(request, cursor, limit, **query))


# -- exports ---------------------------------------------------------------------------------------


class ExportJob(msgspec.Struct):
    id: UUID
    status: Literal["queued", "running", "done", "failed", "expired"]
    progress: int  # percent
    records_done: int
    records_total: int
    error: str | None  # why it failed
    size_bytes: int | None
    sha256: str | None  # of the archive (hex)
    filename: str | None
    requested_by_email: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None  # the archive is deleted then
    download: str | None  # the archive's URL, while it can be downloaded


class ExportList(msgspec.Struct):
    """The organization's most recent export jobs, newest first (at most 25: one page; ``next`` is always null)."""

    items: list[ExportJob]
    rate_per_hour: int  # exports the organization may request per hour
    remaining: int  # how many more it may request now
    next: str | None = None


def _base(org: OrgContext) -> str:
    return f"/api/v1/orgs/{org.org.slug}/exports"


def export_job(org: OrgContext, job: dict) -> ExportJob:
    return ExportJob(
        job["id"], job["status"], job["progress"], job["records_done"], job["records_total"], job["error"], job["size_bytes"],
        job["sha256"], job["filename"], job["requested_by_email"], job["created_at"], job["started_at"], job["finished_at"],
        job["expires_at"], f"{_base(org)}/{job['id']}/download" if job["downloadable"] else None,
    )


@post("/exports", name="api.exports.create", opt=EXPORT, status_code=202, responses=documented(409))
async def export_create(request: Request, org: NamedDependency[OrgContext], idempotency_key: IdempotencyKey = None) -> Response[ExportJob]:
    """Request an export of the organization's data; it is built in the background (``Location``:
    its status, polled until ``status`` is ``done``, then ``download``). 429 with ``Retry-After``
    past the organization's hourly export rate. With ``Idempotency-Key``, a retry requests nothing new."""
    if (earlier := await limits.replay(org, request)) is not None:
        return earlier  # type: ignore[return-value]
    job_id = await exports.request_export(org)
    job = await exports.get_job(org, str(job_id))
    headers = {"Location": f"{_base(org)}/{job_id}"}
    body = msgspec.json.encode(export_job(org, job))
    await limits.remember(org, request, 202, body, headers)
    return Response(body, status_code=202, media_type="application/json", headers=headers)  # type: ignore[return-value]


@get("/exports", name="api.exports.list", opt=EXPORT, responses=documented())
async def export_list(org: NamedDependency[OrgContext]) -> ExportList:
    """The most recent export jobs and how many more may be requested this hour."""
    data = await exports.exports_page(org)
    return ExportList([export_job(org, j) for j in data["jobs"]], data["rate"], data["remaining"])


@get("/exports/{export_id:str}", name="api.exports.get", opt=EXPORT, responses=documented())
async def export_get(org: NamedDependency[OrgContext], export_id: FromPath[str]) -> ExportJob:
    """One export job: its status and progress, and its archive's URL once it is ready."""
    return export_job(org, await exports.get_job(org, export_id))


@asynccontextmanager
async def _token_transaction(scope: Scope, org: OrgContext) -> AsyncIterator[OrgContext]:
    """``portal.tenancy.context.org_transaction`` for a token: a short transaction that enters the
    org with the request's token again (revoked, expired, suspended meanwhile: 401)."""
    async with db.transaction():
        current = await enter_token(scope, org.permission, lock=False)
        if current.org.id != org.org.id:
            raise NotFound()
        yield current


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


@get(
    "/exports/{export_id:str}/download", name="api.exports.download", opt={**EXPORT, "streaming": True},
    media_type="application/zip", responses=documented(),
    response_description="The archive (a ZIP file); ``Repr-Digest`` carries its SHA-256",
)
async def export_download(request: Request, org: NamedDependency[OrgContext], export_id: FromPath[str]) -> Stream:
    """The export's archive. 404 while it is not ready (queued, building), or once it failed or expired."""
    head = is_head(request.scope)  # a HEAD downloads nothing: not audited, no chunk read
    async with _token_transaction(request.scope, org) as ctx:  # committed (download audited) before a byte is sent
        job = await exports.open_download(ctx, export_id, head=head)
    return Stream(
        _nothing() if head else exports.archive_chunks(org, job["id"], lambda ctx: _token_transaction(request.scope, ctx)),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{job["filename"]}"',
            "Content-Length": str(job["size_bytes"]),
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(job['sha256'])).decode()}:",
        },
    )


# -- billing ---------------------------------------------------------------------------------------

Plan = Literal["free", "team", "enterprise"]


class Seats(msgspec.Struct):
    limit: int  # the seat limit
    members: int
    pending_invites: int  # live pending invites hold a seat too
    available: int  # seats left for invites


class BillingSettings(msgspec.Struct):
    plan: Plan
    billing_email: str | None
    seat_limit: int
    spend_cap_cents: int | None  # null: no cap
    seats: Seats
    updated_at: datetime | None


class BillingUpdate(msgspec.Struct):
    """Only the fields given change (as the billing page's form would have them)."""

    plan: Plan | msgspec.UnsetType = msgspec.UNSET
    billing_email: Annotated[str, Meta(max_length=320)] | None | msgspec.UnsetType = msgspec.UNSET  # null or "": none
    seat_limit: Annotated[int, Meta(ge=1, le=billing.SEATS_MAX)] | msgspec.UnsetType = msgspec.UNSET  # not below the members
    spend_cap_cents: Annotated[int, Meta(ge=0, le=billing.SPEND_CAP_MAX_CENTS)] | None | msgspec.UnsetType = msgspec.UNSET  # null: no cap


_NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _version(org: OrgContext, settings: dict) -> dict:
    """What the billing settings' ``ETag`` is made of (``common.etag``): the org and when they last changed."""
    return {"id": org.org.id, "updated_at": settings["updated_at"] or _NEVER}


async def _billing(org: OrgContext) -> tuple[dict, Response[BillingSettings]]:
    data = await billing.billing_page(org)
    settings = data["settings"]
    usage = await seat_usage(org, clock.now())
    taken = usage["members"] + usage["pending"]
    seats = Seats(settings["seat_limit"], usage["members"], usage["pending"], max(0, settings["seat_limit"] - taken))
    body = BillingSettings(
        settings["plan"], settings["billing_email"], settings["seat_limit"], settings["spend_cap_cents"], seats, settings["updated_at"]
    )
    return data, Response(body, headers={"ETag": common.etag(_version(org, settings))})


@get("/billing", name="api.billing.get", opt=BILLING, responses=documented())
async def billing_get(org: NamedDependency[OrgContext]) -> Response[BillingSettings]:
    """The organization's billing settings and the seats in use, with their version in ``ETag``."""
    return (await _billing(org))[1]


@patch("/billing", name="api.billing.update", opt=BILLING, responses=documented(412, 422))
async def billing_update(request: Request, org: NamedDependency[OrgContext], data: JSONBody[BillingUpdate]) -> Response[BillingSettings]:
    """Change some billing settings (422 as on the billing page: an invalid email, a seat limit
    below the number of members). With ``If-Match``, only if they are still the version it names."""
    current, _ = await _billing(org)
    common.check_version(request, _version(org, current["settings"]), "billing settings")
    form = dict(current["form"])
    if data.plan is not msgspec.UNSET:
        form["plan"] = data.plan
    if data.billing_email is not msgspec.UNSET:
        form["billing_email"] = data.billing_email or ""
    if data.seat_limit is not msgspec.UNSET:
        form["seat_limit"] = str(data.seat_limit)
    if data.spend_cap_cents is not msgspec.UNSET:
        form["spend_cap"] = billing.format_cents(data.spend_cap_cents)
    await billing.update_billing(org, form)
    return (await _billing(org))[1]


ROUTES = [
    audit_event_list, export_create, export_list, export_get, export_download, billing_get, billing_update,
]
