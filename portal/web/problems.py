"""Errors of the JSON API as ``application/problem+json`` (RFC 9457): ``type``, ``title``,
``status``, ``detail``, and ``errors`` (field → message) for invalid input. The app's error
handlers (``portal.web.errors``) answer this way for every path under ``/api/``, including the
ones no route matched."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from portal.db.engine import database_down
from portal.errors import DomainError, NameTaken, NotFound, TooManyRequests

log = logging.getLogger("portal.api")

MEDIA_TYPE = "application/problem+json"
BEARER = 'Bearer realm="praesidia"'


class Unauthorized(DomainError):
    """No token, or one that is unknown, revoked, expired or suspended: 401 and a Bearer challenge."""

    status_code = 401
    title = "Authentication required"


class Problem(msgspec.Struct, omit_defaults=True):
    """An error (RFC 9457). ``errors``: field → message, for invalid input."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = None


_DESCRIPTIONS = {
    400: "The request is malformed (a parameter or the JSON body is not valid)",
    401: "No token, or an unknown, revoked, expired or suspended one",
    403: "The token's role lacks the permission",
    404: "No such thing in this organization (or no such organization for this token)",
    409: "The change conflicts with the current state",
    412: "If-Match names a version that is no longer current",
    422: "The values are not valid; ``errors`` says why, per field",
    429: "Too many requests; retry after ``Retry-After`` seconds",
}


def documented(*codes: int) -> dict[int, ResponseSpec]:
    """The problem responses a route may give, for its OpenAPI operation."""
    return {
        code: ResponseSpec(data_container=Problem, description=_DESCRIPTIONS[code], media_type=MEDIA_TYPE, generate_examples=False)
        for code in sorted({400, 401, 403, 404, 429, *codes})
    }


def problem(status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers or {})


def handle_domain(request: Request, exc: DomainError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = f'{BEARER}, error="invalid_token"' if exc.message != exc.title else BEARER
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    extra = {"errors": exc.field_errors} if exc.field_errors else {}
    if isinstance(exc, NotFound) and exc.message == NotFound().message:  # the pages' wording, said for programs
        return problem(404, "Not found", "No such thing in this organization, or no such organization for this token.")
    if isinstance(exc, NameTaken):
        return problem(409, "Name already taken", next(iter(exc.field_errors.values())), **extra)
    return problem(exc.status_code, exc.title, exc.message, headers=headers, **extra)


def handle_http(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        errors = {}
        for item in exc.extra or []:
            if isinstance(item, dict):
                errors[str(item.get("key") or "body")] = str(item.get("message", "is not valid"))
        return problem(400, "Invalid request", "The request body or parameters are not valid.", errors=errors)
    title = exc.detail or "Error"
    if exc.status_code == 404:
        title, detail = "Not found", "There is no such API route."
    else:
        detail = exc.detail or "The request could not be handled."
    return problem(exc.status_code, title, detail, headers=exc.headers or None)


def handle_too_deep(request: Request, exc: RecursionError) -> Response:
    """A JSON body nested deeper than the decoder goes (thousands of brackets): malformed input."""
    return problem(400, "Invalid request", "The JSON body is nested too deeply.")


def handle_crash(request: Request, exc: Exception) -> Response:
    if database_down(exc):  # PostgreSQL restarting or out of reach
        log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return problem(503, "Service unavailable", "The service is briefly unavailable; the change may not have been saved. Check before retrying.", headers={"Retry-After": "5"})
    log.exception("API request failed: %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "Something went wrong on our side; nothing was changed.")


EXCEPTION_HANDLERS = {DomainError: handle_domain, HTTPException: handle_http, RecursionError: handle_too_deep, Exception: handle_crash}
