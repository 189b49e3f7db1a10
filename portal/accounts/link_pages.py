"""Pages opened from an emailed secret link (password reset, email confirmation).

One way for both: such a page leaks nothing (no Referer, no cached copy), a client that opens too
many links is refused, and a dead link is a 404 page of the link's own template that says why.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from litestar import Request, Response
from litestar.status_codes import HTTP_404_NOT_FOUND

from portal.accounts.signed import DeadLink
from portal.errors import TooManyRequests
from portal.tenancy.context import client_ip
from portal.web.errors import error_response
from portal.web.render import page

# A link is a secret (a confirmation link may carry an invite link in ``next``): no Referer leaves
# its page and nothing keeps a copy.
PRIVATE_LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


async def on_link(
    request: Request, template: str, check_client: Callable[[str], Awaitable[None]], answer: Callable[[], Awaitable[Response]]
) -> Response:
    """``answer()`` — what a live link's page or form answers — behind the per-client limit on
    opening links (``check_client(ip)``: a 429 page); a dead link gets ``template``'s dead page."""
    try:
        await check_client(client_ip(request.scope))
    except TooManyRequests as exc:
        return error_response(request, exc.status_code, exc.message, {"Retry-After": str(exc.retry_after), **PRIVATE_LINK_HEADERS})
    try:
        response = await answer()
    except DeadLink as exc:
        response = await page(request, template, status=HTTP_404_NOT_FOUND, dead=True, reason=exc.message)
    response.headers.update(PRIVATE_LINK_HEADERS)
    return response


async def link_page(request: Request, template: str, *, status: int = 200, **context: object) -> Response:
    """A live link's page (or its form, sent back with its errors)."""
    return await page(request, template, status=status, dead=False, **context)
