"""Connection secrets at rest: AES-256-GCM under a key derived from ``SECRET_KEY`` (HKDF-SHA256).

The ciphertext is bound to its org and connection (associated data), so a value copied to another
row, or another org, does not decrypt. The portal only ever encrypts: secrets are write-only, and
``decrypt`` exists for the platform that uses the connection (and for tests).

Stored form: ``v1.<base64url(nonce || ciphertext+tag)>``. The version prefix leaves room for key
rotation.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.config import get_settings

VERSION = "v1"
_INFO = b"praesidia/connection-secret/v1"
_SALT = b"praesidia-portal"


class SecretError(ValueError):
    """A stored secret that cannot be decrypted (wrong key, wrong row, tampered)."""


@lru_cache(maxsize=4)
def _cipher(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(secret_key.encode())
    return AESGCM(key)


def _aad(org_id: UUID, connection_id: UUID) -> bytes:
    return f"connection:{org_id}:{connection_id}".encode()


def encrypt(plaintext: str, *, org_id: UUID, connection_id: UUID) -> str:
    nonce = os.urandom(12)
    sealed = _cipher(get_settings().secret_key).encrypt(nonce, plaintext.encode(), _aad(org_id, connection_id))
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(stored: str, *, org_id: UUID, connection_id: UUID) -> str:
    version, _, body = stored.partition(".")
    if version != VERSION:
        raise SecretError("unknown secret format")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        opened = _cipher(get_settings().secret_key).decrypt(raw[:12], raw[12:], _aad(org_id, connection_id))
    except (InvalidTag, ValueError) as exc:
        raise SecretError("secret does not decrypt for this connection") from exc
    return opened.decode()
