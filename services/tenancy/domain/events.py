"""What happened in tenancy, in the past tense; adapters turn these into published events."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class AccountCreated:
    account_id: uuid.UUID
    name: str
    slug: str
    tier: str


@dataclass(frozen=True)
class AccountSuspended:
    account_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class AccountReactivated:
    account_id: uuid.UUID


@dataclass(frozen=True)
class TenantCreated:
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class TenantMappingCodeCreated:
    account_id: uuid.UUID
    mapping_code_id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    code: str


@dataclass(frozen=True)
class TenantGroupCreated:
    account_id: uuid.UUID
    group_id: uuid.UUID
    parent_id: uuid.UUID | None
    type: str
    name: str


@dataclass(frozen=True)
class TenantGroupMoved:
    """The group moved under another parent, its whole subtree with it."""

    account_id: uuid.UUID
    group_id: uuid.UUID
    old_parent_id: uuid.UUID | None
    new_parent_id: uuid.UUID | None


@dataclass(frozen=True)
class TenantGroupRenamed:
    account_id: uuid.UUID
    group_id: uuid.UUID
    old_name: str
    new_name: str


@dataclass(frozen=True)
class TenantGroupDeleted:
    """The group and every group below it; their tenants moved to `tenants_moved_to`."""

    account_id: uuid.UUID
    group_id: uuid.UUID
    name: str
    deleted_groups: int
    moved_tenants: int
    tenants_moved_to: uuid.UUID | None


@dataclass(frozen=True)
class TenantMoved:
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    old_group_id: uuid.UUID | None
    new_group_id: uuid.UUID | None


@dataclass(frozen=True)
class LocationSnapshot:
    address_lines: tuple[str, ...]
    city: str
    postal_code: str
    region: str
    country: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class TenantLocationChanged:
    """The tenant's location was set (location) or removed (location None)."""

    account_id: uuid.UUID
    tenant_id: uuid.UUID
    location: LocationSnapshot | None


DomainEvent = (
    AccountCreated
    | AccountSuspended
    | AccountReactivated
    | TenantCreated
    | TenantMappingCodeCreated
    | TenantGroupCreated
    | TenantGroupMoved
    | TenantGroupRenamed
    | TenantGroupDeleted
    | TenantMoved
    | TenantLocationChanged
)
