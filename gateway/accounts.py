"""Which account a call acts in, and what the caller may do there.

The account comes from the `X-Account` header (an id or a slug), else it is the caller's only
account. Identity says whether the caller is a member and with which permissions and tenants;
tenancy says whether the account is active. Answers are cached for a couple of seconds, keyed
by every input; errors are never cached and always deny.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from canopy.identity.v1 import identity_pb2
from canopy.tenancy.v1 import tenancy_pb2
from gateway.problems import Problem, forbidden, from_rpc_error, internal, invalid
from services.runtime.context import ContextTokens, service_context

log = logging.getLogger(__name__)

ACCOUNTS_READ = "tenancy.accounts:read"
PRINCIPALS_RESOLVE = "identity.principals:resolve"
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
    permissions: frozenset[str]
    # None: every tenant of the account.
    tenant_ids: frozenset[uuid.UUID] | None

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
        return Membership(self.account_id, self.slug, self.permissions, frozenset({tenant_id}))


class AccountResolver:
    """Resolves (principal, X-Account) to a Membership, or a problem that denies the call."""

    def __init__(
        self,
        *,
        identity: Any,  # identity_pb2_grpc.IdentityServiceStub
        tenancy: Any,  # tenancy_pb2_grpc.TenancyServiceStub
        tokens: ContextTokens,
        account_ttl: float,
        resolution_ttl: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._identity = identity
        self._tenancy = tenancy
        self._tokens = tokens
        self._timeout = timeout
        self._accounts: TtlCache[str, tenancy_pb2.Account] = TtlCache(account_ttl, clock=clock)
        self._resolutions: TtlCache[tuple[str, str], identity_pb2.Resolution] = TtlCache(
            resolution_ttl, clock=clock
        )

    async def membership(
        self, *, principal_id: str, account_hint: str | None, correlation_id: str
    ) -> Membership:
        if account_hint is not None and account_hint.strip():
            hint = account_hint.strip()
            if not _ACCOUNT_HINT.match(hint):
                raise invalid("X-Account must be an account id or slug")
            account = await self._account(hint, correlation_id)
            if account is None:
                raise _not_a_member(NOT_A_MEMBER)
            resolution = await self._resolve(principal_id, account.id, correlation_id)
            if not resolution.member:
                raise _not_a_member(NOT_A_MEMBER)
        else:
            resolution = await self._resolve(principal_id, "", correlation_id)
            if resolution.membership_count > 1:
                raise Problem(
                    400,
                    "account-required",
                    "Account required",
                    f"you belong to {resolution.membership_count} accounts; name one with the "
                    "X-Account header (its id or slug)",
                )
            if not resolution.member or not resolution.account_id:
                raise _not_a_member("not a member of any account")
            account = await self._account(resolution.account_id, correlation_id)
            if account is None:
                raise _not_a_member(NOT_A_MEMBER)
        if account.status != tenancy_pb2.ACCOUNT_STATUS_ACTIVE:
            kind, title, detail = BLOCKED.get(account.status, INACTIVE)
            raise forbidden(detail, kind=kind, title=title)
        return membership_of(account, resolution)

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
            raise _upstream_failure(error, "tenancy", "GetAccount") from error
        self._accounts.put(hint, account)
        return account

    async def _resolve(
        self, principal_id: str, account_id: str, correlation_id: str
    ) -> identity_pb2.Resolution:
        key = (principal_id, account_id)
        cached = self._resolutions.get(key)
        if cached is not None:
            return cached
        ctx = service_context(
            "gateway",
            account_id=uuid.UUID(account_id) if account_id else None,
            permissions=[PRINCIPALS_RESOLVE],
            correlation_id=correlation_id,
        )
        try:
            resolution = await self._identity.Resolve(
                identity_pb2.ResolveRequest(principal_id=principal_id, account_id=account_id),
                metadata=self._tokens.metadata(ctx),
                timeout=self._timeout,
            )
        except grpc.RpcError as error:
            if _code(error) is grpc.StatusCode.NOT_FOUND:
                detail = NOT_A_MEMBER if account_id else "not a member of any account"
                raise _not_a_member(detail) from error
            raise _upstream_failure(error, "identity", "Resolve") from error
        self._resolutions.put(key, resolution)
        return resolution


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
    return Membership(
        account_id=account_id,
        slug=account.slug,
        permissions=frozenset(resolution.permissions),
        tenant_ids=tenants,
    )


def _not_a_member(detail: str) -> Problem:
    return forbidden(detail, kind="not-a-member", title="Not a member")


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    code = error.code() if hasattr(error, "code") else None
    return code if isinstance(code, grpc.StatusCode) else None


def _upstream_failure(error: grpc.RpcError, service: str, method: str) -> Problem:
    """Any other failure denies the call: 503/504 when the peer is down or slow, else 500."""
    code = _code(error)
    log.warning(
        "account resolution failed",
        extra={"fields": {"service": service, "method": method, "code": code and code.name}},
    )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return from_rpc_error(error, service=service)
    return internal()
