"""Errors of the JSON API as ``application/problem+json`` (RFC 9457): ``type``, ``title``,
``status``, ``detail``, and ``errors`` (field → message) for invalid input."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from portal.errors import DomainError, TooManyRequests

log = logging.getLogger("portal.api")

MEDIA_TYPE = "application/problem+json"
BEARER = 'Bearer realm="praesidia"'


class Unauthorized(DomainError):
    """No token, or one that is unknown, revoked, expired or suspended: 401 and a Bearer challenge."""

    status_code = 401
    title = "Authentication required"


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
    return problem(exc.status_code, exc.title, exc.message, headers=headers, **extra)


def handle_http(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        errors = {}
        for item in exc.extra or []:
            if isinstance(item, dict):
                errors[str(item.get("key") or "body")] = str(item.get("message", "is not valid"))
        return problem(422, "Invalid request", "The request body or parameters are not valid.", errors=errors)
    return problem(exc.status_code, exc.detail or "Error", exc.detail or "The request could not be handled.", headers=exc.headers or None)


def handle_crash(request: Request, exc: Exception) -> Response:
    log.exception("API request failed: %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "Something went wrong on our side; nothing was changed.")


EXCEPTION_HANDLERS = {DomainError: handle_domain, HTTPException: handle_http, Exception: handle_crash}
