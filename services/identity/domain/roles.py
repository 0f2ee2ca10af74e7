"""Roles and permissions: the preset roles every account gets, and what people may be granted."""

import uuid
from dataclasses import dataclass
from datetime import datetime

# Granted on the whole account; tenant-group and tenant scopes come later.
ACCOUNT_SCOPE = "account"

# Minted by services and operators only; never part of a role a person can hold.
SERVICE_ONLY_PERMISSIONS = frozenset(
    {
        "tenancy.accounts:create",
        "tenancy.accounts:read",
        "tenancy.accounts:manage",
        "tenancy.datakeys:use",
        "identity.principals:resolve",
        "ingestion.files:content",
        "canonical.rejects:export",
    }
)

# Every permission a person may hold, as the RPCs of all contexts declare them.
PERSON_PERMISSIONS = frozenset(
    {
        "tenancy.tenants:read",
        "tenancy.tenants:write",
        "identity.users:read",
        "identity.users:write",
        "identity.roles:read",
        "identity.grants:write",
        "ingestion.dropzones:read",
        "ingestion.dropzones:write",
        "ingestion.files:read",
        "canonical.schemas:read",
        "canonical.schemas:write",
        "canonical.records:read",
        "canonical.rejects:read",
        "audit.events:read",
        "audit.events:verify",
    }
)

PRESET_ROLES: dict[str, frozenset[str]] = {
    "admin": PERSON_PERMISSIONS,
    "staff": frozenset(
        {
            "tenancy.tenants:read",
            "ingestion.dropzones:read",
            "ingestion.files:read",
            "canonical.schemas:read",
            "canonical.records:read",
            "canonical.rejects:read",
        }
    ),
    "auditor": frozenset(
        {
            "tenancy.tenants:read",
            "identity.users:read",
            "identity.roles:read",
            "ingestion.dropzones:read",
            "ingestion.files:read",
            "canonical.schemas:read",
            "canonical.rejects:read",
            "audit.events:read",
            "audit.events:verify",
        }
    ),
    "customer": frozenset({"canonical.records:read"}),
}


@dataclass(frozen=True)
class Role:
    id: uuid.UUID
    name: str
    permissions: tuple[str, ...]
    preset: bool


def preset_role_rows() -> list[tuple[str, tuple[str, ...]]]:
    """The preset roles as (name, sorted permissions), in a stable order."""
    return [(name, tuple(sorted(perms))) for name, perms in PRESET_ROLES.items()]


def role_name(value: str) -> str:
    """A role name as asked for by a caller: trimmed and lower-case."""
    return value.strip().lower()


@dataclass(frozen=True)
class RoleGrant:
    id: uuid.UUID
    user_id: uuid.UUID
    role: str
    scope: str
    created_at: datetime
