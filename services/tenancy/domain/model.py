"""Accounts, tenants and tenant mapping codes, and the rules they keep."""

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.runtime.errors import InvalidInput
from services.tenancy.domain.errors import InvalidSlug, InvalidTier, InvalidTransition
from services.tenancy.domain.events import (
    AccountCreated,
    AccountReactivated,
    AccountSuspended,
    DomainEvent,
    TenantCreated,
    TenantMappingCodeCreated,
    TenantMoved,
)

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_NAME_LENGTH = 200
MAX_REASON_LENGTH = 500
MAX_SOURCE_LENGTH = 100
MAX_CODE_LENGTH = 200


class AccountStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSING = "closing"
    CLOSED = "closed"


class Tier(StrEnum):
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


def validate_slug(slug: str) -> str:
    """A slug is 3-40 lowercase letters, digits and inner hyphens, and never looks like an id."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise InvalidSlug(
            f"slug {slug!r} is not valid: use 3 to 40 lowercase letters, digits and hyphens,"
            " starting and ending with a letter or digit"
        )
    if UUID_SHAPE.fullmatch(slug):
        raise InvalidSlug(f"slug {slug!r} is not valid: it must not look like an account id")
    return slug


def parse_tier(tier: str) -> Tier:
    """The tier named, or `standard` when none is."""
    if not tier:
        return Tier.STANDARD
    try:
        return Tier(tier)
    except ValueError:
        allowed = ", ".join(t.value for t in Tier)
        raise InvalidTier(f"tier {tier!r} is not valid: use one of {allowed}") from None


def clean_text(value: str, *, what: str, max_length: int) -> str:
    """`value` without surrounding whitespace; it must be non-empty and not too long."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInput(f"{what} is required")
    if len(cleaned) > max_length:
        raise InvalidInput(f"{what} is too long (at most {max_length} characters)")
    return cleaned


def clean_source(source: str) -> str:
    return clean_text(source, what="source", max_length=MAX_SOURCE_LENGTH)


def clean_code(code: str) -> str:
    return clean_text(code, what="code", max_length=MAX_CODE_LENGTH)


@dataclass
class Account:
    """A paying customer organisation: the hard isolation boundary."""

    id: uuid.UUID
    name: str
    slug: str
    tier: Tier
    status: AccountStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def open(cls, *, id: uuid.UUID, name: str, slug: str, tier: str) -> "Account":
        account = cls(
            id=id,
            name=clean_text(name, what="account name", max_length=MAX_NAME_LENGTH),
            slug=validate_slug(slug),
            tier=parse_tier(tier),
            status=AccountStatus.ACTIVE,
        )
        account.events.append(
            AccountCreated(
                account_id=id, name=account.name, slug=account.slug, tier=account.tier.value
            )
        )
        return account

    def suspend(self, reason: str) -> None:
        """Nothing is deleted and nothing gets in until the account is reactivated."""
        reason = reason.strip()
        if len(reason) > MAX_REASON_LENGTH:
            raise InvalidInput(f"reason is too long (at most {MAX_REASON_LENGTH} characters)")
        self._move(AccountStatus.SUSPENDED, allowed_from=AccountStatus.ACTIVE)
        self.events.append(AccountSuspended(account_id=self.id, reason=reason))

    def reactivate(self) -> None:
        self._move(AccountStatus.ACTIVE, allowed_from=AccountStatus.SUSPENDED)
        self.events.append(AccountReactivated(account_id=self.id))

    def _move(self, to: AccountStatus, *, allowed_from: AccountStatus) -> None:
        if self.status in (AccountStatus.CLOSING, AccountStatus.CLOSED):
            raise InvalidTransition(f"account {self.slug} is {self.status.value} and cannot change")
        if self.status == to:
            raise InvalidTransition(f"account {self.slug} is already {to.value}")
        if self.status != allowed_from:
            raise InvalidTransition(
                f"account {self.slug} is {self.status.value}; only a {allowed_from.value}"
                f" account can become {to.value}"
            )
        self.status = to

    def pull_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events


@dataclass
class Tenant:
    """An operating unit inside an account: a dealership, site or facility."""

    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    # The tenant group it is placed in (at most one), or None.
    group_id: uuid.UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(cls, *, id: uuid.UUID, account_id: uuid.UUID, name: str) -> "Tenant":
        tenant = cls(
            id=id,
            account_id=account_id,
            name=clean_text(name, what="tenant name", max_length=MAX_NAME_LENGTH),
        )
        tenant.events.append(TenantCreated(account_id=account_id, tenant_id=id, name=tenant.name))
        return tenant

    def move_to(self, group_id: uuid.UUID | None) -> bool:
        """Place the tenant in a group (None: in none); False (and no event) when already there."""
        if group_id == self.group_id:
            return False
        old_group_id, self.group_id = self.group_id, group_id
        self.events.append(
            TenantMoved(
                account_id=self.account_id,
                tenant_id=self.id,
                old_group_id=old_group_id,
                new_group_id=group_id,
            )
        )
        return True

    def pull_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events


@dataclass
class TenantMappingCode:
    """Which value in a source's files (e.g. a dealer code) means which tenant."""

    id: uuid.UUID
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    source: str
    code: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def create(
        cls, *, id: uuid.UUID, account_id: uuid.UUID, tenant_id: uuid.UUID, source: str, code: str
    ) -> "TenantMappingCode":
        mapping = cls(
            id=id,
            account_id=account_id,
            tenant_id=tenant_id,
            source=clean_source(source),
            code=clean_code(code),
        )
        mapping.events.append(
            TenantMappingCodeCreated(
                account_id=account_id,
                mapping_code_id=id,
                tenant_id=tenant_id,
                source=mapping.source,
                code=mapping.code,
            )
        )
        return mapping

    def pull_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events
