"""Identity's domain rules, with no I/O."""

import re
import uuid
from pathlib import Path

import pytest

from canopy.audit.v1 import audit_pb2
from canopy.canonical.v1 import canonical_pb2
from canopy.identity.v1 import identity_pb2
from canopy.ingestion.v1 import ingestion_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.identity.adapters.catalogue import declared_permissions, permission_catalogue
from services.identity.domain.errors import InvalidEmail, WeakPassword
from services.identity.domain.resolution import GrantedPermissions, ambiguous, resolution
from services.identity.domain.roles import (
    FIXED_PRESETS,
    SERVICE_ONLY_PERMISSIONS,
    GrantScope,
    preset_role_rows,
    preset_roles,
)
from services.identity.domain.tokens import access_token_claims, jwk_of, key_id
from services.identity.domain.users import check_password, display_name, normalize_email
from services.runtime import pages as paging
from services.runtime.errors import InvalidInput
from services.runtime.permissions import method_rules, undeclared

CATALOGUE = permission_catalogue()
PRESET_ROLES = preset_roles(CATALOGUE)


def readme_presets() -> dict[str, set[str]]:
    """The preset table of services/README.md: | role | permissions |."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    rows = re.findall(r"^\| (staff|auditor|customer) \| ([^|]+) \|$", readme.read_text(), re.M)
    return {role: {p.strip() for p in permissions.split(",")} for role, permissions in rows}


def test_the_four_preset_roles_match_the_services_readme() -> None:
    assert set(PRESET_ROLES) == {"admin", "staff", "auditor", "customer"}
    documented = readme_presets()
    assert set(documented) == {"staff", "auditor", "customer"}
    for role, permissions in documented.items():
        assert PRESET_ROLES[role] == permissions, role


def test_admin_holds_every_declared_permission_except_the_service_only_ones() -> None:
    rules = method_rules(tenancy_pb2, identity_pb2, ingestion_pb2, canonical_pb2, audit_pb2)
    declared = {rule.permission for rule in rules.values() if rule.permission}
    assert PRESET_ROLES["admin"] >= declared - SERVICE_ONLY_PERMISSIONS
    assert SERVICE_ONLY_PERMISSIONS <= set(declared_permissions())
    assert not PRESET_ROLES["admin"] & SERVICE_ONLY_PERMISSIONS


def test_no_preset_role_holds_a_service_only_permission() -> None:
    for permissions in PRESET_ROLES.values():
        assert not permissions & SERVICE_ONLY_PERMISSIONS
        assert permissions <= CATALOGUE.names


def test_every_fixed_preset_permission_is_declared_by_some_rpc() -> None:
    for permissions in FIXED_PRESETS.values():
        assert permissions <= CATALOGUE.names


def test_preset_rows_are_stable_and_sorted() -> None:
    rows = preset_role_rows(CATALOGUE)
    assert [name for name, _ in rows] == ["admin", "staff", "auditor", "customer"]
    assert all(list(perms) == sorted(perms) for _, perms in rows)


@pytest.mark.parametrize("password", ["short", "elevenchars", " " * 20])
def test_passwords_shorter_than_twelve_or_blank_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password, email="ann@example.com")


def test_the_refusal_names_the_minimum_length() -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        check_password("x" * 11, email="ann@example.com")


def test_a_twelve_character_password_is_accepted() -> None:
    check_password("blue-kettle9", email="ann@example.com")


@pytest.mark.parametrize(
    "password", ["password1234", "Password1234", "qwertyuiopas", "x" * 12, "abababababab"]
)
def test_common_and_repetitive_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="common"):
        check_password(password, email="ann@example.com")


def test_the_emails_user_name_is_not_a_password() -> None:
    with pytest.raises(WeakPassword, match="user name"):
        check_password("ann.lee.smith", email="ann.lee.smith@example.com")


def test_the_email_is_not_a_password() -> None:
    with pytest.raises(WeakPassword, match="email"):
        check_password("Ann@Example.com", email="ann@example.com")


def test_an_absurdly_long_password_is_refused() -> None:
    with pytest.raises(WeakPassword, match="at most"):
        check_password("x" * 5000, email="ann@example.com")


def test_emails_are_trimmed_and_their_domain_lowercased() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "Ann.Lee@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "a b@example.com",
        "ann..lee@example.com",
        "ann@-example.com",
        "ann@@example.com",
    ],
)
def test_malformed_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(email)


def test_display_names_have_their_whitespace_collapsed() -> None:
    assert display_name("  Ann   Lee ") == "Ann Lee"
    with pytest.raises(InvalidInput):
        display_name("x" * 201)


def test_access_tokens_carry_who_and_until_when_but_no_permissions() -> None:
    user_id = uuid.uuid4()
    claims = access_token_claims(
        user_id=user_id, token_id=uuid.uuid4(), issued_at=1000, lifetime_seconds=3600
    )
    assert claims["sub"] == str(user_id)
    assert (claims["iss"], claims["aud"], claims["exp"]) == ("canopy-identity", "canopy", 4600)
    assert not {"prm", "permissions", "roles"} & set(claims)


def test_key_ids_are_the_rfc7638_thumbprint() -> None:
    # RFC 8037, appendix A.3.
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert key_id(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    jwk = jwk_of("k1", public)
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": "k1",
        "alg": "EdDSA",
        "use": "sig",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }


def test_a_member_holds_the_union_of_its_roles_permissions() -> None:
    account = uuid.uuid4()
    result = resolution(
        account_id=account,
        member=True,
        granted=[
            GrantedPermissions(frozenset({"a:read", "b:read"}), GrantScope.account()),
            GrantedPermissions(frozenset({"b:read", "c:write"}), GrantScope.account()),
        ],
        membership_count=1,
    )
    assert result.permissions == {"a:read", "b:read", "c:write"}
    assert result.all_tenants and not result.tenant_ids


def test_a_non_member_holds_nothing_whatever_it_was_granted() -> None:
    result = resolution(
        account_id=uuid.uuid4(),
        member=False,
        granted=[GrantedPermissions(frozenset({"a:read"}), GrantScope.account())],
        membership_count=0,
    )
    assert not result.member and not result.permissions and not result.all_tenants


def test_an_ambiguous_default_says_how_many_accounts() -> None:
    result = ambiguous(2)
    assert (result.account_id, result.member, result.membership_count) == (None, False, 2)


def test_page_tokens_round_trip_and_bad_ones_are_refused() -> None:
    last = uuid.uuid4()
    assert paging.decode_token(paging.encode_token(last)) == last
    assert paging.decode_token("") is None
    assert paging.page_size(0) == 50 and paging.page_size(10_000) == 500
    with pytest.raises(InvalidInput):
        paging.decode_token("not a token!")
    with pytest.raises(InvalidInput):
        paging.page_size(-1)


def test_every_identity_rpc_declares_a_permission_or_is_public() -> None:
    rules = method_rules(identity_pb2)
    assert undeclared(rules) == []
    public = {path.rsplit("/", 1)[1] for path, rule in rules.items() if rule.public}
    assert public == {"IssueToken", "GetJwks", "RefreshToken", "RevokeToken"}
