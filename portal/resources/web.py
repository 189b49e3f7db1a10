"""Request-side helpers the resource routes share (the services stay free of Litestar)."""

from __future__ import annotations

from litestar import Request, Response

from portal.resources import common
from portal.tenancy.context import OrgContext
from portal.web.render import env, is_htmx, safe_next


def list_params(request: Request) -> tuple[str, int]:
    """``q`` and ``page`` from the query string, whatever the client sends."""
    params = request.query_params
    return common.search_text(params.get("q")), common.page_number(params.get("page"))


def fragment(request: Request, block: str) -> str | None:
    """The block to render alone for an htmx request; a history restore needs the whole page."""
    if is_htmx(request) and request.headers.get("hx-history-restore-request") != "true":
        return block
    return None


def back_to(form: dict[str, str], org: OrgContext, default: str) -> str:
    """Where a no-JS form returns to: the page it was posted from, if it is one of this org's."""
    target = safe_next(form.get("next"), default)
    prefix = f"/orgs/{org.org.slug}/"
    return target if target.startswith(prefix) else default


def removed(message: str) -> Response:
    """For an htmx delete from a list: an empty body replaces the row, the flash says what happened."""
    flash = env.get_template("_components/flash.html").render(flashes=[("success", message)], oob=True)
    return Response(flash, status_code=200, media_type="text/html", headers={"Vary": "HX-Request"})
