"""Roles and permissions: presets, custom roles, the permission catalogue, scoped grants."""

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.identity.domain.errors import (
    InvalidInput,
    ServiceOnlyPermissions,
    UnknownPermissions,
)

# Minted by services and operators only; never part of a role a person can hold.
SERVICE_ONLY_PERMISSIONS = frozenset(
    {
        "tenancy.accounts:create",
        "tenancy.accounts:read",
        "tenancy.accounts:manage",
        "tenancy.datakeys:use",
        "identity.principals:resolve",
        "identity.signing_keys:rotate",
        "ingestion.files:content",
        "canonical.rejects:export",
        "canonical.fixtures:manage",
    }
)

ADMIN = "admin"

# The fixed presets; `admin` holds the whole catalogue (see preset_roles).
FIXED_PRESETS: dict[str, frozenset[str]] = {
    "staff": frozenset(
        {
            "tenancy.tenants:read",
            "ingestion.dropzones:read",
            "ingestion.files:read",
            "canonical.schemas:read",
            "canonical.records:read",
            "canonical.rejects:read",
            "canonical.jobs:read",
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
            "canonical.jobs:read",
            "audit.events:read",
            "audit.events:verify",
        }
    ),
    "customer": frozenset({"canonical.records:read"}),
}
PRESET_NAMES = (ADMIN, *FIXED_PRESETS)

_PERMISSION = re.compile(r"^[a-z]+\.[a-z_]+:[a-z_]+$")
_ROLE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_DESCRIPTION_LENGTH = 500


@dataclass(frozen=True)
class PermissionCatalogue:
    """Every permission a person may hold, each with the RPCs that ask for it.

    Generated from the protos' method options (minus the service-only permissions), so it is
    complete by construction.
    """

    methods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, declared: Mapping[str, Iterable[str]]) -> "PermissionCatalogue":
        """From {permission: methods} as the protos declare them."""
        return cls(
            {
                name: tuple(sorted(methods))
                for name, methods in sorted(declared.items())
                if name and name not in SERVICE_ONLY_PERMISSIONS
            }
        )

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.methods)

    def check(self, permissions: Iterable[str]) -> frozenset[str]:
        """The permissions, trimmed; raise if any is service-only or not in the catalogue."""
        wanted = frozenset(p.strip() for p in permissions if p.strip())
        service_only = wanted & SERVICE_ONLY_PERMISSIONS
        if service_only:
            raise ServiceOnlyPermissions(sorted(service_only))
        unknown = wanted - self.names
        if unknown:
            raise UnknownPermissions(sorted(unknown))
        return wanted


def preset_roles(catalogue: PermissionCatalogue) -> dict[str, frozenset[str]]:
    """The presets every account gets: admin holds every permission a person may hold."""
    return {ADMIN: catalogue.names, **FIXED_PRESETS}


def preset_role_rows(catalogue: PermissionCatalogue) -> list[tuple[str, tuple[str, ...]]]:
    """The preset roles as (name, sorted permissions), in a stable order."""
    return [(name, tuple(sorted(perms))) for name, perms in preset_roles(catalogue).items()]


def is_permission_name(value: str) -> bool:
    return bool(_PERMISSION.match(value))


@dataclass(frozen=True)
class Role:
    id: uuid.UUID
    name: str
    permissions: tuple[str, ...]
    preset: bool
    based_on: str = ""
    description: str = ""


def role_name(value: str) -> str:
    """A role name as asked for by a caller: trimmed and lower-case."""
    return value.strip().lower()


def custom_role_name(value: str) -> str:
    """A new custom role's name: lower-case letters, digits, '-' and '_'; not a preset's."""
    name = role_name(value)
    if not name:
        raise InvalidInput("name is required")
    if not _ROLE_NAME.match(name):
        raise InvalidInput(
            "a role name is 1-63 lower-case letters, digits, '-' or '_', starting with a letter"
            " or digit"
        )
    if name in PRESET_NAMES:
        raise InvalidInput(f"{name!r} is the name of a preset role")
    return name


def description(value: str) -> str:
    text = " ".join(value.split())
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description must be at most {MAX_DESCRIPTION_LENGTH} characters")
    return text


@dataclass(frozen=True)
class RoleDiff:
    against: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


def diff(role: Iterable[str], preset: Iterable[str], *, against: str) -> RoleDiff:
    mine, theirs = frozenset(role), frozenset(preset)
    return RoleDiff(
        against=against, added=tuple(sorted(mine - theirs)), removed=tuple(sorted(theirs - mine))
    )


class ScopeType(StrEnum):
    ACCOUNT = "account"
    TENANT_GROUP = "tenant_group"
    TENANT = "tenant"


# Kept for callers of the first version.
ACCOUNT_SCOPE = ScopeType.ACCOUNT.value


@dataclass(frozen=True)
class GrantScope:
    """Where a grant applies: the whole account, a tenant-group subtree, or one tenant."""

    type: ScopeType
    id: uuid.UUID | None = None

    @classmethod
    def account(cls) -> "GrantScope":
        return cls(ScopeType.ACCOUNT)

    @classmethod
    def parse(cls, scope_type: str, scope_id: str) -> "GrantScope":
        kind = scope_type.strip().lower() or ScopeType.ACCOUNT.value
        try:
            parsed = ScopeType(kind)
        except ValueError:
            raise InvalidInput("scope_type must be account, tenant_group or tenant") from None
        if parsed is ScopeType.ACCOUNT:
            if scope_id.strip():
                raise InvalidInput("an account-wide grant takes no scope_id")
            return cls(parsed)
        if not scope_id.strip():
            raise InvalidInput(f"scope_id is required for a {parsed.value} grant")
        try:
            return cls(parsed, uuid.UUID(scope_id.strip()))
        except ValueError:
            raise InvalidInput("scope_id must be a UUID") from None


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE_ACCOUNT = "service_account"


@dataclass(frozen=True)
class RoleGrant:
    id: uuid.UUID
    principal_id: uuid.UUID
    role: str
    scope: GrantScope
    created_at: datetime
    principal_kind: PrincipalKind = PrincipalKind.USER
    domain_rule_id: uuid.UUID | None = None

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal_id
