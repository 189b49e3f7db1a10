"""Connection secrets at rest: AES-256-GCM under a key derived from ``SECRET_KEY`` (HKDF-SHA256).

The ciphertext is bound to its org and connection (associated data), so a value copied to another
row, or another org, does not decrypt. The portal only ever encrypts: secrets are write-only, and
``decrypt`` exists for the platform that uses the connection (and for tests).

Stored form: ``v1.<base64url(nonce || ciphertext+tag)>``. The version prefix leaves room for key
rotation.
"""

from __future__ import annotations

import base64
from uuid import UUID

from cryptography.exceptions import InvalidTag

from portal.sealing import open_sealed, seal

VERSION = "v1"
_INFO = b"praesidia/connection-secret/v1"


class SecretError(ValueError):
    """A stored secret that cannot be decrypted (wrong key, wrong row, tampered)."""


def _aad(org_id: UUID, connection_id: UUID) -> bytes:
    return f"connection:{org_id}:{connection_id}".encode()


def encrypt(plaintext: str, *, org_id: UUID, connection_id: UUID) -> str:
    sealed = seal(plaintext.encode(), info=_INFO, aad=_aad(org_id, connection_id))
    return f"{VERSION}.{base64.urlsafe_b64encode(sealed).decode()}"


def decrypt(stored: str, *, org_id: UUID, connection_id: UUID) -> str:
    version, _, body = stored.partition(".")
    if version != VERSION:
        raise SecretError("unknown secret format")
    try:
        opened = open_sealed(base64.urlsafe_b64decode(body.encode()), info=_INFO, aad=_aad(org_id, connection_id))
    except (InvalidTag, ValueError) as exc:
        raise SecretError("secret does not decrypt for this connection") from exc
    return opened.decode()
