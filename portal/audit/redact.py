"""What no reader of the audit trail or of an export sees again: values under credential-looking keys.

Connection configs saved before each kind declared its allowed keys may hold a credential, and so
may the audit events that recorded them. Every reader — the audit log page, its CSV, the export
archive — shows such values blanked (``HIDDEN``). ``looks_like_credential`` is the one heuristic;
connection forms use it too, for their hints.
"""

from __future__ import annotations

import re
from typing import Any

HIDDEN = "(hidden: looks like a credential)"

# Names that say "credential". Only a hint on a key already refused: the allow-list is the rule.
_CREDENTIAL_WORDS = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "credential",
    "authorization", "bearer", "signingkey", "sessionkey", "cookie", "signature",
)
_CREDENTIAL_NAMES = {"pwd", "pass", "auth", "key", "sig"}
_NORMALIZE = re.compile(r"[^a-z0-9]")


def looks_like_credential(name: str) -> bool:
    normal = _NORMALIZE.sub("", name.lower())
    return normal in _CREDENTIAL_NAMES or any(word in normal for word in _CREDENTIAL_WORDS)


# Values that are credentials whatever their key: bearer headers, our own tokens, and the shapes
# of the best-known providers' keys. A heuristic, for refusing them in free-form payloads.
_CREDENTIAL_VALUE = re.compile(
    r"\bbearer\s+\S|\bbasic\s+[A-Za-z0-9+/=]{8,}|\bprt_[A-Za-z0-9_-]{8,}|\bsk-[A-Za-z0-9_-]{8,}|\bxox[abposr]-[A-Za-z0-9-]{8,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE,
)


def credential_in(value: Any, path: str = "") -> str | None:
    """Where in ``value`` a credential seems to be, by its key's name or its text's shape; None."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if looks_like_credential(str(key)):
                return here
            if found := credential_in(item, here):
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := credential_in(item, f"{path}[{i}]"):
                return found
    elif isinstance(value, str) and _CREDENTIAL_VALUE.search(value):
        return path or "(the value)"
    return None


def without_credentials(value: Any) -> Any:
    """``value`` with what credential-looking keys hold blanked out: for showing a config saved
    before the allow-list, which may still hold one."""
    if isinstance(value, dict):
        return {k: HIDDEN if looks_like_credential(k) else without_credentials(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_credentials(v) for v in value]
    return value


def in_audit_event(action: str, value: Any) -> Any:
    """An audit event's before/after as read back: connection events recorded before the per-kind
    allow-list may hold a credential in their config, which no reader should see again."""
    if value is not None and action.startswith("connection."):
        return without_credentials(value)
    return value
