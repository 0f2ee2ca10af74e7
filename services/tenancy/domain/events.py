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


DomainEvent = (
    AccountCreated
    | AccountSuspended
    | AccountReactivated
    | TenantCreated
    | TenantMappingCodeCreated
)
