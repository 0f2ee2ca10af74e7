"""Envelope encryption of keys at rest: a key-encryption key (KEK) wraps data and signing keys."""

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def generate_kek() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class KeyWrapper:
    def __init__(self, kek_b64: str) -> None:
        if not kek_b64:
            raise ValueError("CANOPY_KEY_ENCRYPTION_KEY is not set")
        self._aead = AESGCM(base64.b64decode(kek_b64))

    def wrap(self, key: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, purpose.encode())

    def unwrap(self, wrapped: bytes, *, purpose: str) -> bytes:
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], purpose.encode())
