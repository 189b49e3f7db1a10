"""Email addresses, read one way everywhere: syntax checked by ``email-validator`` (no DNS
lookups), then kept as the portal stores them: trimmed, lower-cased, and in ASCII.

One mailbox must have one spelling, or it could hold two accounts and slip past "already a
member" and per-address limits: a domain typed in Unicode (``bücher.de``, a full-width ``ｅ``) is
stored in its ASCII form (``xn--bcher-kva.de``, ``e``), and the part before the @ must be ASCII.

The ``.test`` top-level domain (RFC 2606) is accepted, as it always was here: development data,
the demo and the test suite use it. Other special-use names (``.localhost``, ``.invalid``, …)
cannot receive mail and are refused.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_LENGTH = 254  # RFC 5321's limit on a forward path, less its angle brackets
MISSING = "Enter your email address."
INVALID = "Enter a valid email address, like name@example.com."


def _ascii(email: str) -> str:
    """The address's one ASCII spelling; ``EmailNotValidError`` if it is not a valid address."""
    checked = validate_email(
        email, check_deliverability=False, test_environment=True, strict=True,  # strict: ≤ 64 before the @
        allow_smtputf8=False,
    )
    return (checked.ascii_email or email).lower()


def canonical(raw: str) -> str:
    """The form an address is stored and compared in; what isn't a valid address (sign-in looks up
    whatever was typed) is just trimmed and lower-cased."""
    email = raw.strip().lower()
    if len(email) > MAX_LENGTH:
        return email
    try:
        return _ascii(email)
    except EmailNotValidError:
        return email


def normalize(raw: str) -> str:
    """``raw`` as the portal stores it, or ``ValueError`` with a message for the person who typed it."""
    email = raw.strip().lower()
    if not email:
        raise ValueError(MISSING)
    if len(email) > MAX_LENGTH:
        raise ValueError(INVALID)
    try:
        return _ascii(email)
    except EmailNotValidError:
        raise ValueError(INVALID) from None
