"""Identity's newer domain rules, with no I/O: scopes, per-tenant permissions, lockout, keys."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.identity.domain import api_keys, throttle
from services.identity.domain.domains import Domain, normalize_domain, txt_record_value
from services.identity.domain.errors import (
    InvalidDomain,
    ServiceOnlyPermissions,
    UnknownPermissions,
)
from services.identity.domain.resolution import GrantedPermissions, resolution, scope_buckets
from services.identity.domain.roles import (
    GrantScope,
    PermissionCatalogue,
    ScopeType,
    custom_role_name,
    diff,
)
from services.runtime.errors import InvalidInput

READ, WRITE, AUDIT = "canonical.records:read", "canonical.schemas:write", "audit.events:read"


def grant(
    perms: set[str], kind: ScopeType = ScopeType.ACCOUNT, scope_id=None
) -> GrantedPermissions:  # type: ignore[no-untyped-def]
    return GrantedPermissions(frozenset(perms), GrantScope(kind, scope_id))


def test_narrow_grants_are_bucketed_by_permission_set() -> None:
    g1, g2, t1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    buckets = scope_buckets(
        [
            grant({READ}),
            grant({WRITE}, ScopeType.TENANT_GROUP, g1),
            grant({WRITE}, ScopeType.TENANT_GROUP, g2),
            grant({WRITE}, ScopeType.TENANT, t1),
            grant({AUDIT}, ScopeType.TENANT, t1),
            grant(set(), ScopeType.TENANT, t1),
        ]
    )
    assert buckets == {
        frozenset({WRITE}): (frozenset({g1, g2}), frozenset({t1})),
        frozenset({AUDIT}): (frozenset(), frozenset({t1})),
    }


def test_without_an_account_grant_only_covered_tenants_are_visible() -> None:
    account, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    result = resolution(
        account_id=account,
        member=True,
        granted=[
            grant({READ}, ScopeType.TENANT_GROUP, uuid.uuid4()),
            grant({AUDIT}, ScopeType.TENANT, b),
        ],
        expanded={frozenset({READ}): frozenset({a, b}), frozenset({AUDIT}): frozenset({b})},
        membership_count=1,
        authz_version=7,
    )
    assert not result.all_tenants and result.tenant_ids == {a, b}
    assert result.tenant_permissions == {a: {READ}, b: {READ, AUDIT}}
    assert result.permissions == {READ, AUDIT} and result.authz_version == 7
    assert result.allows(AUDIT, b) and not result.allows(AUDIT, a)


def test_an_account_grant_shows_every_tenant_and_narrow_ones_add_per_tenant() -> None:
    account, a = uuid.uuid4(), uuid.uuid4()
    result = resolution(
        account_id=account,
        member=True,
        granted=[
            grant({READ}),
            grant({WRITE}, ScopeType.TENANT, a),
            grant({READ}, ScopeType.TENANT, a),
        ],
        expanded={frozenset({WRITE}): frozenset({a}), frozenset({READ}): frozenset({a})},
        membership_count=1,
    )
    assert result.all_tenants and not result.tenant_ids
    assert result.account_permissions == {READ}
    assert result.tenant_permissions == {a: {READ, WRITE}}
    assert result.allows(READ, uuid.uuid4()) and not result.allows(WRITE, uuid.uuid4())


def test_a_tenant_the_group_no_longer_has_is_not_visible() -> None:
    result = resolution(
        account_id=uuid.uuid4(),
        member=True,
        granted=[grant({READ}, ScopeType.TENANT_GROUP, uuid.uuid4())],
        expanded={frozenset({READ}): frozenset()},
        membership_count=1,
    )
    assert not result.all_tenants and not result.tenant_ids and not result.permissions


@pytest.mark.parametrize(
    ("scope_type", "scope_id"),
    [("region", ""), ("tenant", ""), ("account", str(uuid.uuid4())), ("tenant_group", "x")],
)
def test_malformed_scopes_are_refused(scope_type: str, scope_id: str) -> None:
    with pytest.raises(InvalidInput):
        GrantScope.parse(scope_type, scope_id)


def test_an_empty_scope_means_the_account() -> None:
    assert GrantScope.parse("", "") == GrantScope.account()


def test_the_catalogue_refuses_unknown_and_service_only_permissions() -> None:
    catalogue = PermissionCatalogue.of(
        {READ: ["CanonicalService.QueryRecords"], "identity.principals:resolve": ["X.Resolve"]}
    )
    assert catalogue.names == {READ}
    assert catalogue.check([f" {READ} ", ""]) == {READ}
    with pytest.raises(UnknownPermissions):
        catalogue.check([WRITE])
    with pytest.raises(ServiceOnlyPermissions):
        catalogue.check(["identity.principals:resolve"])


def test_custom_role_names_and_diffs() -> None:
    assert custom_role_name(" Night-Shift ") == "night-shift"
    for bad in ("", "admin", "has space", "-lead", "x" * 64):
        with pytest.raises(InvalidInput):
            custom_role_name(bad)
    changes = diff({READ, WRITE}, {READ, AUDIT}, against="staff")
    assert (changes.added, changes.removed) == ((WRITE,), (AUDIT,))


def test_locks_start_at_the_fifth_failure_and_double_up_to_an_hour() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    state = throttle.Throttle()
    for _ in range(4):
        state, lock = throttle.after_failure(state, now)
        assert lock is None and state.locked_for(now) == 0
    state, lock = throttle.after_failure(state, now)
    assert lock == timedelta(minutes=1) and state.locked_for(now) == 60
    assert state.locked_for(now + timedelta(minutes=1)) == 0
    durations = [throttle.lock_duration(n) for n in range(8)]
    assert durations[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert durations[-1] == timedelta(hours=1) and max(durations) == timedelta(hours=1)


def test_api_keys_parse_only_in_their_own_format() -> None:
    key = api_keys.format_key("0123456789ab", "s" * 43)
    assert api_keys.parse_key(key) == ("0123456789ab", "s" * 43)
    for bad in ("", "cpy_0123456789ab", "xyz_0123456789ab_" + "s" * 43, "cpy_XYZ_" + "s" * 43):
        assert api_keys.parse_key(bad) is None
    stored = api_keys.secret_hash("s" * 43)
    assert api_keys.secret_matches("s" * 43, stored) and not api_keys.secret_matches(
        "t" * 43, stored
    )
    assert api_keys.lifetime(0) == timedelta(days=90)
    with pytest.raises(InvalidInput):
        api_keys.lifetime(366)


def test_domains_are_normalized_and_consumer_ones_refused() -> None:
    assert normalize_domain(" @Dealer-Group.DE. ") == "dealer-group.de"
    for bad in ("gmail.com", "GMX.DE", "web.de", "proton.me", "localhost", "1.2.3.4", ""):
        with pytest.raises(InvalidDomain):
            normalize_domain(bad)


def test_a_domain_is_proven_by_its_exact_token() -> None:
    domain = Domain(uuid.uuid4(), "dealer.de", "tok", None, datetime.now(UTC))
    assert domain.proven_by([f'"{txt_record_value("tok")}"'])
    assert not domain.proven_by([txt_record_value("other"), "tok"])
