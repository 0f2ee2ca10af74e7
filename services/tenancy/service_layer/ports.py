"""The ports the use cases need: repositories in one unit of work, and key wrapping."""

import uuid
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.tenancy.domain.events import DomainEvent
from services.tenancy.domain.model import Account, Tenant, TenantMappingCode

TenantScope = frozenset[uuid.UUID] | None  # None: every tenant of the account


@dataclass(frozen=True)
class StoredDataKey:
    version: int
    wrapped_key: bytes


class AccountRepository(Protocol):
    async def add(self, account: Account) -> None:
        """Insert and fill in the timestamps; AlreadyExists when the slug is taken."""

    async def find(self, ref: str) -> Account | None:
        """An account by id or slug, across accounts (the lookup before one is known)."""

    async def get_for_update(self, account_id: uuid.UUID) -> Account | None: ...

    async def save_status(self, account: Account) -> None: ...


class DataKeyRepository(Protocol):
    async def add(self, *, account_id: uuid.UUID, version: int, wrapped_key: bytes) -> None: ...

    async def get(self, account_id: uuid.UUID, version: int | None) -> StoredDataKey | None:
        """The given version, or the newest one not destroyed when `version` is None."""


class TenantRepository(Protocol):
    async def add(self, tenant: Tenant) -> None:
        """Insert and fill in the timestamps; AlreadyExists when the name is taken."""

    async def get(
        self, account_id: uuid.UUID, tenant_id: uuid.UUID, *, within: TenantScope
    ) -> Tenant | None: ...

    async def list_page(
        self, account_id: uuid.UUID, *, within: TenantScope, after: uuid.UUID | None, limit: int
    ) -> list[Tenant]: ...


class MappingCodeRepository(Protocol):
    async def add(self, mapping: TenantMappingCode) -> None:
        """Insert and fill in the timestamps; AlreadyExists when the code of the source is taken."""

    async def list_page(
        self,
        account_id: uuid.UUID,
        *,
        within: TenantScope,
        source: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[TenantMappingCode]: ...

    async def resolve(
        self, account_id: uuid.UUID, *, within: TenantScope, source: str, codes: list[str]
    ) -> dict[str, uuid.UUID]:
        """code -> tenant id for the known codes, in one query."""


class UnitOfWork(Protocol):
    """One transaction: repositories over it, and events that leave only if it commits."""

    accounts: AccountRepository
    data_keys: DataKeyRepository
    tenants: TenantRepository
    mapping_codes: MappingCodeRepository

    async def emit(self, events: Iterable[DomainEvent]) -> None: ...


class Transactions(Protocol):
    def begin(self, scope: Scope, ctx: CallContext) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work seeing only what `scope` allows; events carry `ctx` as their actor."""


class KeyWrapping(Protocol):
    def wrap(self, key: bytes, *, purpose: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, purpose: str) -> bytes: ...
