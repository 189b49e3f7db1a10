"""Data export pages: request an export, watch it build, download the archive."""

from __future__ import annotations

import base64
from typing import AsyncIterator

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from portal.exports import service
from portal.tenancy.context import OrgContext, org_transaction
from portal.tenancy.permissions import Perm
from portal.web.head import is_head
from portal.web.render import page, redirect
from portal.web.urls import url_for


@get("/exports", name="exports.index", opt={"permission": Perm.EXPORT})
async def export_list(request: Request, org: NamedDependency[OrgContext]) -> Response:
    return await page(request, "exports/index.html", **await service.exports_page(org))


@post("/exports", name="exports.request", opt={"permission": Perm.EXPORT}, status_code=303)
async def export_request(request: Request, org: NamedDependency[OrgContext]) -> Response:
    await service.request_export(org)  # TooManyRequests → 429 page (or message) with Retry-After
    return redirect(
        request, url_for(request, "exports.index"), "Export requested. It is being prepared; this page shows its progress."
    )


@get("/exports/{export_id:str}", name="exports.detail", opt={"permission": Perm.EXPORT})
async def export_status(request: Request, org: NamedDependency[OrgContext], export_id: FromPath[str]) -> Response:
    """The export's row: polled by htmx while the export builds; a page of its own otherwise."""
    return await page(request, "exports/job.html", block="row", job=await service.get_job(org, export_id))


@get("/exports/{export_id:str}/download", name="exports.download", opt={"permission": Perm.EXPORT, "streaming": True})
async def export_download(request: Request, org: NamedDependency[OrgContext], export_id: FromPath[str]) -> Stream:
    head = is_head(request.scope)  # a HEAD downloads nothing: not audited, no chunk read
    async with org_transaction(org) as ctx:  # committed (download audited) before a byte is sent
        job = await service.open_download(ctx, export_id, head=head)
    return Stream(
        _nothing() if head else service.archive_chunks(org, job["id"]),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{job["filename"]}"',
            "Content-Length": str(job["size_bytes"]),
            # RFC 9530: lets a client check the download against the archive's SHA-256.
            "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(job['sha256'])).decode()}:",
        },
    )


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


ROUTES: list = []
ORG_ROUTES = [export_list, export_request, export_status, export_download]
