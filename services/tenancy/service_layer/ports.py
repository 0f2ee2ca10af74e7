"""The ports the use cases need: repositories in one unit of work, and key wrapping."""

import uuid
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.tenancy.domain.events import DomainEvent
from services.tenancy.domain.groups import TenantGroup
from services.tenancy.domain.locations import TenantLocation
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

    async def move(self, tenant: Tenant, group: TenantGroup | None) -> None:
        """Store the tenant's group (`tenant.group_id`, which is `group`'s id) and its path."""

    async def list_in_group(
        self,
        group: TenantGroup,
        *,
        recursive: bool,
        within: TenantScope,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Tenant]:
        """The tenants placed in `group` (recursive: anywhere in its subtree), by id."""

    async def expand(
        self,
        account_id: uuid.UUID,
        *,
        group_ids: list[uuid.UUID],
        tenant_ids: list[uuid.UUID],
        within: TenantScope,
    ) -> list[uuid.UUID]:
        """The live tenants among `tenant_ids` or under the live groups `group_ids`, sorted,
        in one statement; ids of other accounts match nothing."""


@dataclass(frozen=True)
class SubtreeDeletion:
    deleted_groups: int
    moved_tenants: int


class GroupRepository(Protocol):
    """Live tenant groups. What a caller limited to some tenants sees (the groups on the paths
    down to its tenants) is decided by the database's row-level security, not here."""

    async def lock_tree(self, account_id: uuid.UUID) -> None:
        """Serialise changes to the account's tree until the transaction ends."""

    async def add(self, group: TenantGroup) -> None:
        """Insert and fill in the timestamps; AlreadyExists when a sibling has the name."""

    async def get(self, account_id: uuid.UUID, group_id: uuid.UUID) -> TenantGroup | None: ...

    async def get_with_ancestors(
        self, account_id: uuid.UUID, group_id: uuid.UUID
    ) -> list[TenantGroup]:
        """The root first, the group itself last; empty when the group is not found."""

    async def list_children(
        self,
        account_id: uuid.UUID,
        parent_id: uuid.UUID | None,
        *,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[TenantGroup]:
        """The children of `parent_id` (None: the root groups), by id."""

    async def subtree_height(self, group: TenantGroup) -> int:
        """Levels of live groups in the group's subtree, the group included (1 for a leaf)."""

    async def contents(self, group: TenantGroup) -> tuple[int, int]:
        """(live child groups, live tenants) directly in the group."""

    async def rename(self, group: TenantGroup) -> None:
        """Store the new name; AlreadyExists when a sibling has it."""

    async def move(self, group: TenantGroup, *, old_lineage: tuple[uuid.UUID, ...]) -> None:
        """Store the group's new place, and rewrite its subtree's and their tenants' paths, in
        set-based statements; AlreadyExists when a new sibling has its name."""

    async def delete_subtree(self, group: TenantGroup) -> SubtreeDeletion:
        """Soft-delete the group and every group below it, moving their tenants to its parent."""


class LocationRepository(Protocol):
    async def get(self, account_id: uuid.UUID, tenant_id: uuid.UUID) -> TenantLocation | None: ...

    async def put(self, location: TenantLocation) -> None:
        """Insert or replace the tenant's location and fill in the timestamps."""

    async def delete(self, account_id: uuid.UUID, tenant_id: uuid.UUID) -> bool:
        """False when the tenant had no location."""


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
    groups: GroupRepository
    locations: LocationRepository
    mapping_codes: MappingCodeRepository

    async def emit(self, events: Iterable[DomainEvent]) -> None: ...


class Transactions(Protocol):
    def begin(self, scope: Scope, ctx: CallContext) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work seeing only what `scope` allows; events carry `ctx` as their actor."""


class KeyWrapping(Protocol):
    def wrap(self, key: bytes, *, purpose: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, purpose: str) -> bytes: ...
