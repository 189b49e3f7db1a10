"""Emailed links that carry their own proof: an itsdangerous signature over a small payload.

Password-reset and email-confirmation links store nothing: the link holds the user id and a
keyed fingerprint of the one value whose change kills it (the password hash, the address), and
expires by ``max_age``, always passed and measured on the portal's clock.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from portal import clock
from portal.config import get_settings
from portal.errors import NotFound


class DeadLink(NotFound):
    """A link that no longer works (expired, used, tampered with); ``message`` says which kind."""


class _ClockSigner(TimestampSigner):
    """Timestamps from the portal's clock, so expiry follows the same "now" as everything else."""

    def get_timestamp(self) -> int:
        return int(clock.now().timestamp())


class SignedLinks:
    def __init__(self, salt: str, max_age: timedelta, max_length: int) -> None:
        self.salt, self.max_age, self.max_length = salt, max_age, max_length

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(get_settings().secret_key, salt=self.salt, signer=_ClockSigner)

    def fingerprint(self, value: str) -> str:
        """Keyed, so the link reveals nothing about ``value``; compare with ``matches``."""
        key = hashlib.sha256(f"{self.salt}:fingerprint:{get_settings().secret_key}".encode()).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def matches(self, value: str, fingerprint: str) -> bool:
        return hmac.compare_digest(self.fingerprint(value), fingerprint)

    def dumps(self, payload: dict[str, Any]) -> str:
        return self._serializer().dumps(payload)

    def loads(self, token: str) -> dict[str, Any] | None:
        """The payload of a live, untampered link; None for anything else."""
        if not token or len(token) > self.max_length:
            return None
        try:
            payload = self._serializer().loads(token, max_age=int(self.max_age.total_seconds()))
        except BadData:
            return None
        return payload if isinstance(payload, dict) else None
