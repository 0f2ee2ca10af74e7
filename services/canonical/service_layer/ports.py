"""What the canonical use cases need from outside: a file's bytes, tenants, data keys.

Adapters under adapters/grpc/ implement them against ingestion and tenancy; tests pass fakes
through `bootstrap`. Each call covers a whole file or request, never one row.
"""

import uuid
from collections.abc import AsyncGenerator, Collection
from dataclasses import dataclass
from typing import Protocol

from services.runtime.errors import NotFound, PreconditionFailed


class FileUnavailable(NotFound):
    """The file's bytes are gone or were never there; loading it again will not help."""


class KeyUnavailable(PreconditionFailed):
    """The account has no usable data key (closed, or the version was destroyed)."""


@dataclass(frozen=True)
class DataKey:
    version: int
    key: bytes

    def __repr__(self) -> str:  # never show the key
        return f"DataKey(version={self.version})"


class FileSource(Protocol):
    def read(self, *, account_id: uuid.UUID, file_id: uuid.UUID) -> AsyncGenerator[bytes, None]:
        """The file's bytes, chunk by chunk; raises FileUnavailable when it does not exist."""
        ...


class TenantDirectory(Protocol):
    async def resolve(
        self, *, account_id: uuid.UUID, source: str, codes: Collection[str]
    ) -> dict[str, uuid.UUID]:
        """Tenant ids of the codes of `source` that are known; unknown codes are absent."""
        ...


class KeyProvider(Protocol):
    async def current(self, *, account_id: uuid.UUID) -> DataKey:
        """The account's current data key."""
        ...

    async def version(self, *, account_id: uuid.UUID, version: int) -> DataKey:
        """One earlier (or the current) version of the account's data key."""
        ...
