"""One place that turns exceptions into pages: domain errors, framework errors, and crashes.

Every error is a real page (or, for htmx, a message swapped into the flash area) with the right
status code, and the security headers (added by ``before_send``). Unknown paths, other orgs' ids
and orgs you don't belong to all produce the same 404 page.
"""

from __future__ import annotations

import logging

from markupsafe import escape
from litestar import Response
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.plugins.htmx import HTMXRequest

from portal.db.engine import database_down
from portal.errors import DomainError, NotFound, TooManyRequests
from portal.web import problems
from portal.web.auth import NotSignedIn
from portal.web.render import base_context, env, redirect
from portal.web.urls import url_for

log = logging.getLogger("portal")

TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "You don't have permission",
    404: "Page not found",
    405: "Not allowed",
    409: "That can't be done right now",
    413: "Too large",
    422: "Please check the form",
    429: "Too many requests",
    503: "Busy right now",
    500: "Something went wrong on our side",
}


def error_response(request: HTMXRequest, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    title = TITLES.get(status, "Error")
    headers = {"Vary": "HX-Request", **(headers or {})}
    if request.htmx:
        # Show the message where flash messages go, whatever the element that asked.
        html = env.get_template("_components/flash.html").render(flashes=[("error", message)], oob=False)
        headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return Response(html, status_code=status, media_type="text/html", headers=headers)
    try:
        html = env.get_template("errors/error.html").render(
            base_context(request, {"status": status, "title": title, "message": message, "flashes": []})
        )
    except Exception:  # the error page must never fail; fall back to plain markup
        log.exception("error page failed to render")
        html = f"<!doctype html><title>{status}</title><h1>{status} {escape(title)}</h1><p>{escape(message)}</p>"
    return Response(html, status_code=status, media_type="text/html", headers=headers)


def handle_domain(request: HTMXRequest, exc: DomainError) -> Response:
    if request.url.path.startswith(API):
        return problems.handle_domain(request, exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return error_response(request, exc.status_code, exc.message, headers)


API = "/api/"  # the JSON API answers in application/problem+json (portal.web.problems)


def handle_not_signed_in(request: HTMXRequest, exc: NotSignedIn) -> Response:
    return redirect(request, f"{url_for(request, 'account.login_form')}?{exc.query}")


def handle_http(request: HTMXRequest, exc: HTTPException) -> Response:
    if request.url.path.startswith(API):
        return problems.handle_http(request, exc)
    status = exc.status_code
    if status >= 500 and request.url.path.startswith("/static/"):
        # A file the static router could not even look up (a name too long for the file system,
        # say) is simply not there.
        return error_response(request, 404, NotFound().message)
    if isinstance(exc, NotFoundException) or status == 404:
        return error_response(request, 404, NotFound().message)
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return error_response(request, 403, "This form has expired or was sent from another site. Reload the page and try again.")
    if status >= 500:
        log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, exc.detail)
        return error_response(request, status, "Please try again in a moment.")
    if status == 400:
        return error_response(request, 400, "The request could not be understood. Check the address or the form and try again.")
    return error_response(request, status, str(exc.detail) if exc.detail else TITLES.get(status, "Error"))


def handle_crash(request: HTMXRequest, exc: Exception) -> Response:
    if request.url.path.startswith(API):
        return problems.handle_crash(request, exc)
    if database_down(exc):  # PostgreSQL restarting or out of reach
        log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(request, 503, DATABASE_DOWN, {"Retry-After": "5"})
    if request.url.path.startswith("/static/") and isinstance(exc, (OSError, ValueError)):
        return error_response(request, 404, NotFound().message)  # a name no file can have (a NUL, say)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "An unexpected error occurred. It has been logged; please try again.")


DATABASE_DOWN = "The service is briefly unavailable, and your last change may not have been saved. Please check, then try again in a moment."

EXCEPTION_HANDLERS = {
    DomainError: handle_domain,
    NotSignedIn: handle_not_signed_in,
    HTTPException: handle_http,
    Exception: handle_crash,
}
