"""Data sealed at rest with AES-256-GCM, under a key derived from ``SECRET_KEY`` (HKDF-SHA256).

Each use names its own ``info`` (so its key is its own) and binds what it seals to the row it
belongs to (associated data), so a value copied to another row does not open. The sealed form is
``nonce (12 bytes) || ciphertext+tag``.
"""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.config import get_settings

_SALT = b"praesidia-portal"
NONCE = 12


@lru_cache(maxsize=8)
def _cipher(secret_key: str, info: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=info).derive(secret_key.encode()))


def seal(data: bytes, *, info: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + _cipher(get_settings().secret_key, info).encrypt(nonce, data, aad)


def open_sealed(sealed: bytes, *, info: bytes, aad: bytes) -> bytes:
    """The data; ``cryptography.exceptions.InvalidTag`` if the key, the row or the bytes differ."""
    return _cipher(get_settings().secret_key, info).decrypt(sealed[:NONCE], sealed[NONCE:], aad)
