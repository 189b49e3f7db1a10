"""The audit log viewer, its CSV export, and the access report (owners and compliance officers).

Everything here only reads: GET requests never write, not even an event about the download.
"""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Stream
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY

from portal.audit import queries
from portal.errors import Invalid
from portal.tenancy.context import OrgContext, org_transaction
from portal.tenancy.permissions import Perm
from portal.web.render import page

CSV_TYPE = "text/csv"  # Litestar adds "; charset=utf-8"


def _block(request: HTMXRequest) -> str | None:
    return "results" if request.htmx and not request.htmx.history_restore_request else None


@get("/audit", name="audit.log", opt={"permission": Perm.AUDIT})
async def audit_log(request: HTMXRequest, org: NamedDependency[OrgContext]) -> Response:
    params = request.query_params
    try:
        filters = queries.parse_filters(params)
    except Invalid as exc:
        raw = {k: str(params.get(k) or "")[:320] for k in ("actor", "action", "from", "to")}
        return await page(
            request, "audit/log.html", status=HTTP_422_UNPROCESSABLE_ENTITY, block=_block(request), errors=exc.field_errors,
            form=raw, events=[], filters=queries.AuditFilters(), newer=None, older=None, paged=False,
            known_actions=queries.KNOWN_ACTIONS,
        )
    data = await queries.audit_page(org, filters, after_raw=params.get("after"), before_raw=params.get("before"))
    form = {"actor": filters.actor, "action": filters.action, "from": filters.date_from, "to": filters.date_to}
    return await page(request, "audit/log.html", block=_block(request), errors={}, form=form, **data)


@get("/audit.csv", name="audit.csv", opt={"permission": Perm.AUDIT, "streaming": True})
async def audit_csv(request: Request, org: NamedDependency[OrgContext]) -> Response | Stream:
    filters = queries.parse_filters(request.query_params)  # Invalid → the 422 page, before any byte is sent
    return Stream(
        queries.audit_csv(org, filters),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{queries.csv_filename(org.org.slug, "audit-log")}"'},
    )


@get("/access-report", name="audit.access_report", opt={"permission": Perm.AUDIT})
async def access_report(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await page(request, "audit/access_report.html", **await queries.access_report(org))


@get("/access-report.csv", name="audit.access_report_csv", opt={"permission": Perm.AUDIT, "streaming": True})
async def access_report_csv(request: Request, org: NamedDependency[OrgContext]) -> Stream:
    async with org_transaction(org) as ctx:  # one consistent read, done before a byte is sent
        report = await queries.access_report(ctx)
    return Stream(
        queries.access_csv(report),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{queries.csv_filename(org.org.slug, "access-report")}"'},
    )


ORG_ROUTES = [audit_log, audit_csv, access_report, access_report_csv]
