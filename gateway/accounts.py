"""Which account a call acts in, and what the caller may do there.

The account comes from the `X-Account` header (an id or a slug), else the request's subdomain
(`<slug>.<base domain>`), else the account the token or API key is bound to, else the caller's
only account. Identity says whether the caller is a member and with which permissions and
tenants; tenancy says whether the account is active (cached for a couple of seconds). Identity's
answers are cached keyed by every input and used only while the account's authz_version is the
one identity reports for this request (gateway.authz); errors are never cached and always deny.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import grpc

from canopy.identity.v1 import identity_pb2
from canopy.tenancy.v1 import tenancy_pb2
from gateway.auth import Principal
from gateway.authz import AuthzVersions, upstream_failure
from gateway.problems import Problem, forbidden, internal, invalid
from services.runtime.context import ContextTokens, service_context

log = logging.getLogger(__name__)

ACCOUNTS_READ = "tenancy.accounts:read"
PRINCIPALS_RESOLVE = "identity.principals:resolve"
TENANTS_READ = "tenancy.tenants:read"
NOT_A_MEMBER = "not a member of this account"

_ACCOUNT_HINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")

# Status -> (problem type, title, detail) for accounts nobody may act in right now.
BLOCKED = {
    tenancy_pb2.ACCOUNT_STATUS_SUSPENDED: (
        "account-suspended",
        "Account suspended",
        "this account is suspended; nothing is deleted, and access returns when it is reactivated",
    ),
    tenancy_pb2.ACCOUNT_STATUS_CLOSING: (
        "account-closing",
        "Account closing",
        "this account is being closed and its data erased",
    ),
    tenancy_pb2.ACCOUNT_STATUS_CLOSED: (
        "account-closed",
        "Account closed",
        "this account is closed",
    ),
}

INACTIVE = ("account-inactive", "Account inactive", "this account is not active")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A small time-bounded cache; the oldest entries go first when it is full."""

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            now = self._clock()
            for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[stale]
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self.ttl, value)

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True)
class Membership:
    """The caller's standing in one account: what the context token will carry."""

    account_id: uuid.UUID
    slug: str
    # Everything the caller may do somewhere in the account (the union over its grants).
    permissions: frozenset[str]
    # None: every tenant of the account.
    tenant_ids: frozenset[uuid.UUID] | None
    # What holds on every tenant in scope, and per tenant (account-wide grants included); None
    # when identity gave one set valid on every tenant in scope.
    account_permissions: frozenset[str] | None = None
    tenant_permissions: Mapping[uuid.UUID, frozenset[str]] | None = None

    def narrowed_to(self, tenant_header: str | None) -> "Membership":
        """The membership limited to the tenant named by `X-Tenant`, which must be in scope."""
        if not tenant_header:
            return self
        try:
            tenant_id = uuid.UUID(tenant_header.strip())
        except ValueError as error:
            raise invalid("X-Tenant must be a tenant id") from error
        if self.tenant_ids is not None and tenant_id not in self.tenant_ids:
            raise forbidden("no access to this tenant")
        return replace(
            self,
            permissions=self.permissions_on(tenant_id),
            tenant_ids=frozenset({tenant_id}),
            account_permissions=None,
            tenant_permissions=None,
        )

    def permissions_on(self, tenant_id: uuid.UUID) -> frozenset[str]:
        if self.tenant_permissions is None:
            return self.permissions
        return (self.account_permissions or frozenset()) | self.tenant_permissions.get(
            tenant_id, frozenset()
        )

    def for_permission(self, permission: str) -> "Membership":
        """What one call needing `permission` may carry: only the tenants where the caller
        holds it, and only permissions that hold on every one of those tenants (so a grant on
        one site never lends its permissions to another)."""
        if self.tenant_permissions is None:
            return self
        wide = self.account_permissions or frozenset()
        if permission in wide:
            return replace(
                self, permissions=wide, account_permissions=None, tenant_permissions=None
            )
        tenants = [t for t, held in self.tenant_permissions.items() if permission in held]
        if self.tenant_ids is not None:
            tenants = [t for t in tenants if t in self.tenant_ids]
        common = (
            frozenset.intersection(*(self.tenant_permissions[t] for t in tenants))
            if tenants
            else frozenset()
        )
        return replace(
            self,
            permissions=wide | common,
            tenant_ids=frozenset(tenants),
            account_permissions=None,
            tenant_permissions=None,
        )

    def limited_to(self, subset: frozenset[str]) -> "Membership":
        """An API key's membership: its owner's, cut to the key's permission subset."""
        per_tenant = self.tenant_permissions
        return replace(
            self,
            permissions=self.permissions & subset,
            account_permissions=None
            if self.account_permissions is None
            else self.account_permissions & subset,
            tenant_permissions=None
            if per_tenant is None
            else {t: held & subset for t, held in per_tenant.items()},
        )


class AccountResolver:
    """Resolves (principal, X-Account, subdomain) to a Membership, or a problem that denies."""

    def __init__(
        self,
        *,
        identity: Any,  # identity_pb2_grpc.IdentityServiceStub
        tenancy: Any,  # tenancy_pb2_grpc.TenancyServiceStub
        tokens: ContextTokens,
        versions: AuthzVersions,
        account_ttl: float,
        resolution_ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity = identity
        self._tenancy = tenancy
        self._tokens = tokens
        self._versions = versions
        self._timeout = timeout
        self._accounts: TtlCache[str, tenancy_pb2.Account] = TtlCache(account_ttl, clock=clock)
        self._tenants: TtlCache[str, bool] = TtlCache(account_ttl, clock=clock)
        # (principal, account asked for, credential) -> (authz_version, identity's answer).
        self._resolutions: TtlCache[tuple[str, str, str], tuple[int, identity_pb2.Resolution]] = (
            TtlCache(resolution_ttl, clock=clock)
        )

    async def membership(
        self,
        *,
        principal: Principal,
        account_hint: str | None,
        subdomain: str | None = None,
        correlation_id: str,
        version: int | None = None,
    ) -> Membership:
        """The caller's membership in the account the request names.

        The account is the `X-Account` header, else the request's subdomain, else the account
        the credential is bound to, else the caller's only account. A subdomain that disagrees
        with X-Account is a 400; a bound credential used for another account is a 403.
        `version` is the account's authz_version when the caller has just read it.
        """
        header = _hint(account_hint)
        if header and subdomain:
            named = await self._account(header, correlation_id)
            if named is None:
                raise _not_a_member(NOT_A_MEMBER)
            if subdomain.lower() not in _names(named):
                raise Problem(
                    400,
                    "account-conflict",
                    "Account conflict",
                    "the X-Account header and the subdomain name different accounts",
                )
        hint = header or subdomain
        if principal.account_id:
            account = await self._account(principal.account_id, correlation_id)
            if account is None:
                raise _not_a_member(NOT_A_MEMBER)
            if hint and hint.lower() not in _names(account):
                what = "API key" if principal.via == "api_key" else "token"
                raise forbidden(
                    f"this {what} is for another account",
                    kind="account-mismatch",
                    title="Account mismatch",
                )
            resolution = await self._resolve(principal, account.id, correlation_id, version)
            if not resolution.member:
                raise _not_a_member(NOT_A_MEMBER)
        elif hint:
            account = await self._account(hint, correlation_id)
            if account is None:
                raise _not_a_member(NOT_A_MEMBER)
            resolution = await self._resolve(principal, account.id, correlation_id, version)
            if not resolution.member:
                raise _not_a_member(NOT_A_MEMBER)
        else:
            resolution = await self._resolve(principal, "", correlation_id, version)
            if resolution.membership_count > 1:
                raise Problem(
                    400,
                    "account-required",
                    "Account required",
                    f"you belong to {resolution.membership_count} accounts; name one with the "
                    "X-Account header (its id or slug) or the subdomain",
                )
            if not resolution.member or not resolution.account_id:
                raise _not_a_member("not a member of any account")
            account = await self._account(resolution.account_id, correlation_id)
            if account is None:
                raise _not_a_member(NOT_A_MEMBER)
        if account.status != tenancy_pb2.ACCOUNT_STATUS_ACTIVE:
            kind, title, detail = BLOCKED.get(account.status, INACTIVE)
            raise forbidden(detail, kind=kind, title=title)
        found = membership_of(account, resolution)
        if principal.key_permissions is not None:
            found = found.limited_to(principal.key_permissions)
        return found

    async def check_tenant(self, membership: Membership, correlation_id: str) -> None:
        """A member of every tenant named one with X-Tenant: it must be a tenant of this account
        (else the same 403 as a tenant outside the caller's scope)."""
        if membership.tenant_ids is None or len(membership.tenant_ids) != 1:
            return
        [tenant_id] = membership.tenant_ids
        key = f"{membership.account_id}/{tenant_id}"
        if self._tenants.get(key):
            return
        ctx = service_context(
            "gateway",
            account_id=membership.account_id,
            permissions=[TENANTS_READ],
            correlation_id=correlation_id,
        )
        try:
            await self._tenancy.GetTenant(
                tenancy_pb2.GetTenantRequest(tenant_id=str(tenant_id)),
                metadata=self._tokens.metadata(ctx),
                timeout=self._timeout,
            )
        except grpc.RpcError as error:
            if _code(error) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise forbidden("no access to this tenant") from error
            raise upstream_failure(error, "tenancy", "GetTenant") from error
        self._tenants.put(key, True)

    async def _account(self, hint: str, correlation_id: str) -> tenancy_pb2.Account | None:
        """The account by id or slug; None when tenancy does not know it."""
        cached = self._accounts.get(hint)
        if cached is not None:
            return cached
        ctx = service_context(
            "gateway", account_id=None, permissions=[ACCOUNTS_READ], correlation_id=correlation_id
        )
        try:
            account = await self._tenancy.GetAccount(
                tenancy_pb2.GetAccountRequest(account=hint),
                metadata=self._tokens.metadata(ctx),
                timeout=self._timeout,
            )
        except grpc.RpcError as error:
            if _code(error) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise upstream_failure(error, "tenancy", "GetAccount") from error
        self._accounts.put(hint, account)
        return account

    async def _resolve(
        self, principal: Principal, account_id: str, correlation_id: str, version: int | None
    ) -> identity_pb2.Resolution:
        """identity's answer, from the cache only while the account's authz_version is unchanged."""
        key = (principal.id, account_id, principal.credential_id)
        cached = self._resolutions.get(key)
        if cached is not None:
            cached_version, resolution = cached
            resolved_account = resolution.account_id or account_id
            if version is None or resolved_account != account_id:
                version = await self._versions.current(resolved_account)
            if version == cached_version:
                return resolution
        ctx = service_context(
            "gateway",
            account_id=uuid.UUID(account_id) if account_id else None,
            permissions=[PRINCIPALS_RESOLVE],
            correlation_id=correlation_id,
        )
        try:
            resolution = await self._identity.Resolve(
                identity_pb2.ResolveRequest(principal_id=principal.id, account_id=account_id),
                metadata=self._tokens.metadata(ctx),
                timeout=self._timeout,
            )
        except grpc.RpcError as error:
            if _code(error) is grpc.StatusCode.NOT_FOUND:
                detail = NOT_A_MEMBER if account_id else "not a member of any account"
                raise _not_a_member(detail) from error
            raise upstream_failure(error, "identity", "Resolve") from error
        # Only an answer that says which version it reflects can be checked later.
        if resolution.authz_version and resolution.account_id:
            self._resolutions.put(key, (resolution.authz_version, resolution))
        return resolution


def subdomain_of(host: str | None, base_domain: str, reserved: frozenset[str]) -> str | None:
    """The account slug in `<slug>.<base domain>` (port ignored); None for any other host."""
    if not host or not base_domain:
        return None
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IPv6 literal
    name = name.rsplit(":", 1)[0].rstrip(".")
    suffix = "." + base_domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    if not label or label in reserved:
        return None
    if "." in label or not _ACCOUNT_HINT.match(label):
        raise invalid(f"the host {name!r} does not name an account")
    return label


def _hint(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    hint = value.strip()
    if not _ACCOUNT_HINT.match(hint):
        raise invalid("X-Account must be an account id or slug")
    return hint


def _names(account: tenancy_pb2.Account) -> set[str]:
    return {account.id.lower(), account.slug.lower()}


def membership_of(account: tenancy_pb2.Account, resolution: identity_pb2.Resolution) -> Membership:
    try:
        account_id = uuid.UUID(account.id)
        tenants = (
            None
            if resolution.all_tenants
            else frozenset(uuid.UUID(t) for t in resolution.tenant_ids)
        )
    except ValueError as error:
        log.error("malformed id from tenancy or identity", exc_info=error)
        raise internal() from error
    per_tenant: dict[uuid.UUID, frozenset[str]] | None = None
    wide: frozenset[str] | None = None
    if resolution.account_permissions or resolution.tenant_permissions:
        wide = frozenset(resolution.account_permissions)
        try:
            per_tenant = {
                uuid.UUID(t.tenant_id): frozenset(t.permissions)
                for t in resolution.tenant_permissions
            }
        except ValueError as error:
            log.error("malformed tenant id from identity", exc_info=error)
            raise internal() from error
    return Membership(
        account_id=account_id,
        slug=account.slug,
        permissions=frozenset(resolution.permissions),
        tenant_ids=tenants,
        account_permissions=wide,
        tenant_permissions=per_tenant,
    )


def _not_a_member(detail: str) -> Problem:
    return forbidden(detail, kind="not-a-member", title="Not a member")


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = error.code() if hasattr(error, "code") else None
    return code if isinstance(code, grpc.StatusCode) else None
