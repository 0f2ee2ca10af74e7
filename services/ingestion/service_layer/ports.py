"""What the use cases need from the world outside, declared beside them."""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.runtime.db import Database
from services.runtime.errors import CanopyError
from services.runtime.outbox import Outbox


class TenantDirectoryUnavailable(CanopyError):
    """Tenancy could not say whether the tenants exist (it is down or failing)."""


class TenantDirectory(Protocol):
    """Which tenants exist in an account (tenancy owns them)."""

    async def unknown_tenants(
        self,
        account_id: uuid.UUID,
        tenant_ids: Sequence[uuid.UUID],
        *,
        correlation_id: str | None = None,
    ) -> list[uuid.UUID]:
        """The ids among `tenant_ids` that are not tenants of the account.

        Raises TenantDirectoryUnavailable when that cannot be told."""
        ...


class FinishedUpload(Protocol):
    """The bytes of one upload the client closed, still outside any drop zone's store."""

    @property
    def size_bytes(self) -> int: ...

    @property
    def sha256(self) -> str: ...


class FileStore(Protocol):
    """Where the bytes of ingested files live."""

    async def keep(
        self,
        upload: FinishedUpload,
        *,
        account_id: uuid.UUID,
        dropzone_id: uuid.UUID,
        file_id: uuid.UUID,
    ) -> str:
        """Move a finished upload into the drop zone's store; returns its storage path."""
        ...

    async def discard(self, upload: FinishedUpload) -> None:
        """Forget an upload that will not be kept."""
        ...

    async def remove(self, storage_path: str) -> None:
        """Delete a kept file whose recording failed."""
        ...

    def read(self, storage_path: str) -> AsyncIterator[bytes]:
        """A kept file's bytes in chunks; FileNotFoundError when they are gone."""
        ...


@dataclass(frozen=True)
class Ports:
    """Everything the use cases work with, built once by bootstrap."""

    db: Database
    outbox: Outbox
    tenants: TenantDirectory
    store: FileStore
