"""Field encryption: AES-256-GCM with the account's data key, bound to where the value lives.

A stored value is "v{key version}:" + base64(nonce || ciphertext || tag). The associated data
binds it to the account, schema, field and dedupe key, so a ciphertext copied to another
record or field does not decrypt.
"""

import base64
import binascii
import hashlib
import hmac
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.canonical.domain.errors import UndecryptableValue
from services.canonical.domain.schemas import MAX_KEY_VERSION, NONCE_BYTES

KEY_BYTES = 32
BLIND_INDEX_PURPOSE = b"blind-index"


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


def blind_index_key(data_key: bytes) -> bytes:
    """The account's blind-index key: HKDF-SHA256 of its data key, purpose "blind-index", so
    the index key is never the encryption key and one cannot be had from the other."""
    if len(data_key) != KEY_BYTES:
        raise ValueError("a data key must be 32 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=BLIND_INDEX_PURPOSE).derive(
        data_key
    )


def index_normal_form(value: str) -> str:
    """What the index compares: no whitespace, case folded ("WVW ZZZ..." = "wvwzzz...")."""
    return "".join(value.split()).casefold()


def blind_index(key: bytes, field: str, value: str) -> str:
    """HMAC-SHA256 (hex) of a field's value in normal form under a blind-index key."""
    message = field.encode() + b"\x1f" + index_normal_form(value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class BlindIndexKey:
    """One account's blind-index key, derived from one version of its data key."""

    key: bytes
    version: int

    @classmethod
    def derive(cls, data_key: bytes, version: int) -> "BlindIndexKey":
        return cls(blind_index_key(data_key), version)

    def digest(self, field: str, value: str) -> str:
        return blind_index(self.key, field, value)

    def __repr__(self) -> str:  # never show the key
        return f"BlindIndexKey(version={self.version})"
