"""What the use cases need from the world outside, declared beside them."""

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from services.ingestion.domain.limits import Tier
from services.ingestion.domain.lockouts import LockoutPolicy
from services.runtime.db import Database
from services.runtime.errors import CanopyError
from services.runtime.outbox import Outbox


class TenantDirectoryUnavailable(CanopyError):
    """Tenancy could not say whether the tenants exist (it is down or failing)."""


class RejectsUnavailable(CanopyError):
    """Canonical could not hand over a file's rejects: `permanent` when asking again will not
    help (it has none for the file, or does not offer the export), else it is down or failing."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


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


class RejectsSource(Protocol):
    """A loaded file's rejected rows as CSV (canonical owns them)."""

    def export(
        self, account_id: uuid.UUID, file_id: uuid.UUID, *, correlation_id: str | None = None
    ) -> AsyncIterator[bytes]:
        """The CSV bytes in chunks; raises RejectsUnavailable when canonical cannot answer."""
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

    async def write_document(
        self,
        chunks: AsyncIterator[bytes],
        *,
        account_id: uuid.UUID,
        dropzone_id: uuid.UUID,
        document_id: uuid.UUID,
    ) -> tuple[str, int]:
        """Store a receipt or reject file for a zone; returns its storage path and size."""
        ...


@dataclass(frozen=True)
class ParsedKey:
    algorithm: str
    fingerprint: str
    # The key as one OpenSSH line without its comment.
    public_key: str
    comment: str


class KeyReader(Protocol):
    def read(self, text: str) -> ParsedKey:
        """One OpenSSH public key line; InvalidInput when it is not one."""
        ...


class SftpListener(Protocol):
    """The SFTP listener of this process and the connections it serves."""

    def is_up(self) -> bool: ...

    def disconnect(self, login_id: uuid.UUID) -> int:
        """Close the connections signed in as the login; how many there were."""
        ...


class NoListener:
    """Stands in for the SFTP listener where none runs (tools, unit tests)."""

    def is_up(self) -> bool:
        return False

    def disconnect(self, login_id: uuid.UUID) -> int:
        return 0


@dataclass(frozen=True)
class Policies:
    """The service's limits and timings, from its config."""

    max_file_bytes: Mapping[Tier, int] = field(
        default_factory=lambda: {
            Tier.STANDARD: 1024**3,
            Tier.PROFESSIONAL: 10 * 1024**3,
            Tier.ENTERPRISE: 50 * 1024**3,
        }
    )
    default_tier: Tier = Tier.STANDARD
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    delete_after_disabled: timedelta = timedelta(days=30)
    delete_confirmation_lifetime: timedelta = timedelta(minutes=10)
    # Signs deletion confirmation tokens (derived from the platform's context key).
    confirmation_key: bytes = b""


@dataclass(frozen=True)
class Ports:
    """Everything the use cases work with, built once by bootstrap."""

    db: Database
    outbox: Outbox
    tenants: TenantDirectory
    store: FileStore
    rejects: RejectsSource | None = None
    keys: KeyReader | None = None
    listener: SftpListener = field(default_factory=NoListener)
    policies: Policies = field(default_factory=Policies)
