"""Unit tests of the tenancy domain rules (no I/O)."""

import uuid

import pytest

from services.runtime.errors import InvalidInput, PreconditionFailed
from services.tenancy.domain.data_keys import DataKey, new_key_material, wrapping_purpose
from services.tenancy.domain.events import (
    AccountCreated,
    AccountReactivated,
    AccountSuspended,
    TenantMappingCodeCreated,
)
from services.tenancy.domain.model import (
    Account,
    AccountStatus,
    Tenant,
    TenantMappingCode,
    Tier,
    parse_tier,
    validate_slug,
)


def open_account(**overrides: str) -> Account:
    fields = {"name": "Acme Motors", "slug": "acme-motors", "tier": ""} | overrides
    return Account.open(id=uuid.uuid4(), **fields)


@pytest.mark.parametrize("slug", ["abc", "acme", "acme-motors", "a1-b2-c3", "9lives", "a" * 40])
def test_valid_slugs_are_accepted(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "ab",  # too short
        "a" * 41,  # too long
        "Acme",  # uppercase
        "-acme",
        "acme-",
        "acme_motors",
        "acme motors",
        "acmé",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",  # looks like an account id
    ],
)
def test_invalid_slugs_are_refused_with_a_clear_message(slug: str) -> None:
    with pytest.raises(InvalidInput, match="slug"):
        validate_slug(slug)


def test_tier_defaults_to_standard_and_unknown_tiers_are_refused() -> None:
    assert parse_tier("") is Tier.STANDARD
    assert parse_tier("enterprise") is Tier.ENTERPRISE
    with pytest.raises(InvalidInput, match="standard, professional, enterprise"):
        parse_tier("gold")


def test_opening_an_account_makes_it_active_and_records_account_created() -> None:
    account = open_account(name="  Acme Motors  ", tier="professional")
    assert account.status is AccountStatus.ACTIVE
    assert account.name == "Acme Motors"
    assert account.pull_events() == [
        AccountCreated(
            account_id=account.id, name="Acme Motors", slug="acme-motors", tier="professional"
        )
    ]
    assert account.pull_events() == []


def test_an_account_needs_a_name() -> None:
    with pytest.raises(InvalidInput, match="account name is required"):
        open_account(name="   ")


def test_active_accounts_can_be_suspended_and_reactivated() -> None:
    account = open_account()
    account.pull_events()
    account.suspend("  unpaid invoice ")
    assert account.status is AccountStatus.SUSPENDED
    account.reactivate()
    assert account.status is AccountStatus.ACTIVE
    assert account.pull_events() == [
        AccountSuspended(account_id=account.id, reason="unpaid invoice"),
        AccountReactivated(account_id=account.id),
    ]


def test_suspending_twice_or_reactivating_an_active_account_is_refused() -> None:
    account = open_account()
    with pytest.raises(PreconditionFailed, match="already active"):
        account.reactivate()
    account.suspend("")
    with pytest.raises(PreconditionFailed, match="already suspended"):
        account.suspend("")


@pytest.mark.parametrize("status", [AccountStatus.CLOSING, AccountStatus.CLOSED])
def test_closing_and_closed_accounts_cannot_change(status: AccountStatus) -> None:
    account = open_account()
    account.status = status
    account.pull_events()
    with pytest.raises(PreconditionFailed, match="cannot change"):
        account.suspend("")
    with pytest.raises(PreconditionFailed, match="cannot change"):
        account.reactivate()
    assert account.status is status
    assert account.pull_events() == []


def test_tenants_and_mapping_codes_clean_their_text_and_record_events() -> None:
    account_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    tenant = Tenant.create(id=tenant_id, account_id=account_id, name=" North Site ")
    assert tenant.name == "North Site"
    mapping = TenantMappingCode.create(
        id=uuid.uuid4(), account_id=account_id, tenant_id=tenant_id, source=" dms ", code="D001"
    )
    assert mapping.pull_events() == [
        TenantMappingCodeCreated(
            account_id=account_id,
            mapping_code_id=mapping.id,
            tenant_id=tenant_id,
            source="dms",
            code="D001",
        )
    ]
    with pytest.raises(InvalidInput, match="code is required"):
        TenantMappingCode.create(
            id=uuid.uuid4(), account_id=account_id, tenant_id=tenant_id, source="dms", code=" "
        )


def test_data_keys_are_256_bit_bound_to_account_and_version_and_never_printed() -> None:
    account_id = uuid.uuid4()
    key = new_key_material()
    assert len(key) == 32 and key != new_key_material()
    assert wrapping_purpose(account_id, 2) == f"data-key:{account_id}:2"
    assert key.hex() not in repr(DataKey(version=1, key=key))
