"""Account data keys: the AES-256 keys other services encrypt customer data with."""

import os
import uuid
from dataclasses import dataclass

DATA_KEY_BYTES = 32
FIRST_VERSION = 1


def new_key_material() -> bytes:
    return os.urandom(DATA_KEY_BYTES)


def wrapping_purpose(account_id: uuid.UUID, version: int) -> str:
    """Bound into the wrapping, so a wrapped key only unwraps for its own account and version."""
    return f"data-key:{account_id}:{version}"


@dataclass(frozen=True)
class DataKey:
    version: int
    key: bytes

    def __repr__(self) -> str:
        return f"DataKey(version={self.version}, key=<redacted>)"
