"""Field encryption: AES-256-GCM with the account's data key, bound to where the value lives.

A stored value is "v{key version}:" + base64(nonce || ciphertext || tag). The associated data
binds it to the account, schema, field and dedupe key, so a ciphertext copied to another
record or field does not decrypt.
"""

import base64
import binascii
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.canonical.domain.errors import UndecryptableValue
from services.canonical.domain.schemas import MAX_KEY_VERSION, NONCE_BYTES

KEY_BYTES = 32


def binding(*, account_id: uuid.UUID, schema: str, field: str, dedupe_key: str) -> bytes:
    """The associated data of one stored value."""
    return f"{account_id}|{schema}|{field}|{dedupe_key}".encode()


def key_version_of(stored: str) -> int:
    prefix, separator, _ = stored.partition(":")
    if not separator or not prefix.startswith("v") or not prefix[1:].isdigit():
        raise UndecryptableValue("stored value has no key version prefix")
    return int(prefix[1:])


class FieldCipher:
    """Encrypts and decrypts with one version of one account's data key."""

    def __init__(self, key: bytes, version: int) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key must be 32 bytes")
        if not 1 <= version <= MAX_KEY_VERSION:
            raise ValueError(f"key version must be 1 to {MAX_KEY_VERSION}")
        self.version = version
        self._prefix = f"v{version}:"
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, associated_data: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), associated_data)
        return self._prefix + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, stored: str, *, associated_data: bytes) -> str:
        if key_version_of(stored) != self.version:
            raise UndecryptableValue(f"value was not encrypted with key version {self.version}")
        try:
            raw = base64.b64decode(stored[len(self._prefix) :], validate=True)
            opened = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data)
        except (InvalidTag, binascii.Error, ValueError):
            raise UndecryptableValue(
                f"value does not decrypt with key version {self.version} for this record and field"
            ) from None
        return opened.decode("utf-8")


class Keyring:
    """Ciphers of several key versions of one account, each built once."""

    def __init__(self, keys: dict[int, bytes] | None = None) -> None:
        self._ciphers: dict[int, FieldCipher] = {}
        for version, key in (keys or {}).items():
            self.add(version, key)

    def add(self, version: int, key: bytes) -> FieldCipher:
        if version not in self._ciphers:
            self._ciphers[version] = FieldCipher(key, version)
        return self._ciphers[version]

    def __contains__(self, version: int) -> bool:
        return version in self._ciphers

    def decrypt(self, stored: str, *, associated_data: bytes) -> str:
        cipher = self._ciphers.get(key_version_of(stored))
        if cipher is None:
            raise UndecryptableValue(f"key version {key_version_of(stored)} is not available")
        return cipher.decrypt(stored, associated_data=associated_data)
