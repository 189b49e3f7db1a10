"""Domain errors. Services raise these; one exception handler turns them into pages and codes."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    title = "Something went wrong"

    def __init__(self, message: str = "", *, field_errors: dict[str, str] | None = None):
        super().__init__(message or self.title)
        self.message = message or self.title
        self.field_errors = field_errors or {}


class NotFound(DomainError):
    """No such thing, or not yours: the same answer either way."""

    status_code = 404
    title = "Page not found"

    def __init__(self, message: str = "We couldn't find that page. It may have been moved or deleted, or you may not have access to it."):
        super().__init__(message)


class Forbidden(DomainError):
    status_code = 403
    title = "You don't have permission"


class Conflict(DomainError):
    status_code = 409
    title = "That can't be done right now"


class Invalid(DomainError):
    status_code = 422
    title = "Please check the form"


class NameTaken(Invalid):
    """A name another item of the org already has: a form's field error on the pages, a 409 on
    the API (the request was valid; the organization's state is what refuses it)."""


class TooManyRequests(DomainError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Unavailable(TooManyRequests):
    """The process is out of capacity (no pooled connection came in time): come back shortly."""

    status_code = 503
    title = "Busy right now"
