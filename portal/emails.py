"""Email addresses, read one way everywhere: syntax checked by ``email-validator`` (no DNS
lookups), then kept as the portal stores them: trimmed and lower-cased.

The ``.test`` top-level domain (RFC 2606) is accepted, as it always was here: development data,
the demo and the test suite use it. Other special-use names (``.localhost``, ``.invalid``, …)
cannot receive mail and are refused.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less its angle brackets
MISSING = "Enter your email address."
INVALID = "Enter a valid email address, like name@example.com."


def canonical(raw: str) -> str:
    """The form an address is stored and compared in, without checking it (sign-in looks it up as typed)."""
    return raw.strip().lower()


def normalize(raw: str) -> str:
    """``raw`` as the portal stores it, or ``ValueError`` with a message for the person who typed it."""
    email = canonical(raw)
    if not email:
        raise ValueError(MISSING)
    if len(email) > MAX_LENGTH:
        raise ValueError(INVALID)
    try:
        validate_email(email, check_deliverability=False, test_environment=True, strict=True)  # strict: ≤ 64 before the @
    except EmailNotValidError:
        raise ValueError(INVALID) from None
    return email
