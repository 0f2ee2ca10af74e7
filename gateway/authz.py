"""Keeping cached permissions honest: identity's authz_version of the account.

Identity bumps an account's authz_version in the same transaction as any grant, role,
membership, user or API key change there. A cached answer is used only while it carries the
account's current version; so once a revoke has committed, no request that arrives after it
is allowed on the old answer.

The current version comes from one of two places:
- while this process holds an authz lease (gateway/leases.py), from memory: identity tells the
  lease holder of every change before it commits (a fence), and the version is read again only
  after a fence for its account, until a read shows every fenced change committed;
- otherwise from a GetAuthzVersion read per request. Concurrent requests for one account share a
  read, but a request only ever joins a read that was sent after it arrived (so the read still
  sees every commit that came before the request): at most one read in flight and one waiting
  per account.

API keys are checked by identity (AuthenticateApiKey); the answer is cached briefly, keyed by a
hash of the key, and only used while its account's version is unchanged.
"""

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from canopy.identity.v1 import identity_pb2
from gateway.auth import Principal
from gateway.problems import Problem, from_rpc_error, internal, unauthenticated

log = logging.getLogger(__name__)

FetchVersion = Callable[[str], Awaitable[int]]


class Lease(Protocol):
    def held(self) -> int | None:
        """The lease's epoch while it is held, else None."""
        ...


class _Read:
    """One version read that several requests wait on."""

    def __init__(self) -> None:
        self.future: asyncio.Future[int] = asyncio.get_running_loop().create_future()


@dataclass
class _Account:
    in_flight: _Read | None = None
    waiting: _Read | None = None


class AuthzVersions:
    """identity's current authz_version of an account, never older than the caller's arrival."""

    def __init__(self, fetch: FetchVersion, lease: Lease | None = None) -> None:
        self._fetch = fetch
        self._lease = lease
        self._accounts: dict[str, _Account] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Learned while the lease was held: account -> (version, lease epoch).
        self._known: dict[str, tuple[int, int]] = {}
        # Fenced changes not yet seen committed: account -> {fence id: version}.
        self._fenced: dict[str, dict[str, int]] = {}
        self.reads = 0

    async def current(self, account_id: str) -> int:
        known = self._known.get(account_id)
        if known is not None and self._lease is not None and known[1] == self._lease.held():
            return known[0]
        state = self._accounts.setdefault(account_id, _Account())
        if state.waiting is not None:
            read = state.waiting  # not sent yet: it will see everything before this request
        elif state.in_flight is None:
            read = _Read()
            self._start(account_id, state, read)
        else:
            # The read in flight may have been answered before this request arrived: wait for
            # the next one, which every request arriving meanwhile shares.
            read = state.waiting = _Read()
        return await asyncio.shield(read.future)

    def fence(self, account_id: str, fence_id: str, version: int, *, withdrawn: bool) -> None:
        """A change of the account is about to commit (or, withdrawn, rolled back instead)."""
        self._known.pop(account_id, None)
        fenced = self._fenced.setdefault(account_id, {})
        if withdrawn:
            fenced.pop(fence_id, None)
        else:
            fenced[fence_id] = version
        if not fenced:
            del self._fenced[account_id]

    def _start(self, account_id: str, state: _Account, read: _Read) -> None:
        state.in_flight = read
        task = asyncio.get_running_loop().create_task(self._run(account_id, state, read))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, account_id: str, state: _Account, read: _Read) -> None:
        self.reads += 1
        epoch = self._lease.held() if self._lease is not None else None
        try:
            version = await self._fetch(account_id)
            self._learn(account_id, version, epoch)
            read.future.set_result(version)
        except BaseException as error:  # noqa: BLE001 - every waiter gets the failure (deny)
            read.future.set_exception(error)
            read.future.exception()  # retrieved: no "never retrieved" warning without waiters
        finally:
            state.in_flight = None
            if state.waiting is not None:
                following, state.waiting = state.waiting, None
                self._start(account_id, state, following)
            elif self._accounts.get(account_id) is state:
                del self._accounts[account_id]

    def _learn(self, account_id: str, version: int, epoch: int | None) -> None:
        """Keep `version` if the lease was held from before the read until now and no fenced
        change of the account is still uncommitted in it."""
        fenced = self._fenced.get(account_id)
        if fenced:
            for fence_id in [f for f, v in fenced.items() if v <= version]:
                del fenced[fence_id]
            if fenced:
                return
            del self._fenced[account_id]
        if epoch is not None and self._lease is not None and self._lease.held() == epoch:
            self._known[account_id] = (version, epoch)


@dataclass(frozen=True)
class KeyAnswer:
    principal: Principal
    # The account's authz_version read before identity answered; None: not known yet.
    version: int | None
    expires: float


class ApiKeys:
    """API key -> Principal (owner, account, permission subset), checked by identity."""

    def __init__(
        self,
        *,
        authenticate: Callable[[str], Awaitable[identity_pb2.ApiKeyPrincipal]],
        versions: AuthzVersions,
        ttl: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self._versions = versions
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._answers: dict[bytes, KeyAnswer] = {}

    async def principal(self, key: str) -> tuple[Principal, int]:
        """The key's principal and its account's current authz_version."""
        digest = hashlib.sha256(key.encode()).digest()
        known = self._answers.get(digest)
        if known is not None:
            version = await self._versions.current(known.principal.account_id)
            if known.version == version and self._clock() < known.expires:
                return known.principal, version
            principal = await self._ask(key)
            if principal.account_id == known.principal.account_id:
                # `version` was read before identity answered: a change after it shows later.
                self._remember(digest, principal, version)
                return principal, version
        else:
            principal = await self._ask(key)
        # First sight: no version read precedes the answer, so it is kept unverified and
        # confirmed by the next request; this request uses identity's fresh answer.
        version = await self._versions.current(principal.account_id)
        self._remember(digest, principal, None)
        return principal, version

    def forget(self) -> None:
        self._answers.clear()

    def _remember(self, digest: bytes, principal: Principal, version: int | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._answers) >= self._max:
            now = self._clock()
            for stale in [d for d, a in self._answers.items() if a.expires <= now]:
                del self._answers[stale]
            while len(self._answers) >= self._max:
                del self._answers[next(iter(self._answers))]
        self._answers[digest] = KeyAnswer(principal, version, self._clock() + self._ttl)

    async def _ask(self, key: str) -> Principal:
        try:
            answer = await self._authenticate(key)
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND):
                raise unauthenticated("the API key is unknown, expired or revoked") from error
            if code is grpc.StatusCode.INVALID_ARGUMENT:
                raise unauthenticated("the API key is malformed") from error
            raise upstream_failure(error, "identity", "AuthenticateApiKey") from error
        if not answer.principal_id or not answer.account_id:
            log.error("identity returned an API key without owner or account")
            raise internal()
        return Principal(
            id=answer.principal_id,
            kind=answer.principal_kind or "service_account",
            credential_id=answer.api_key_id,
            account_id=answer.account_id,
            key_permissions=frozenset(answer.permissions) if answer.permissions else None,
            via="api_key",
        )


def upstream_failure(error: grpc.RpcError, service: str, method: str) -> Problem:
    """Any failure to learn who may do what denies: 503/504 when the peer is down or slow."""
    code = error.code() if hasattr(error, "code") else None
    log.warning(
        "authorization lookup failed",
        extra={
            "fields": {
                "service": service,
                "method": method,
                "code": code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN",
            }
        },
    )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return from_rpc_error(error, service=service)
    return internal()


def version_reader(identity: Any, metadata: Callable[[str], Any], timeout: float) -> FetchVersion:
    """GetAuthzVersion(account_id) over gRPC, as an AuthzVersions fetch function."""

    async def fetch(account_id: str) -> int:
        try:
            answer = await identity.GetAuthzVersion(
                identity_pb2.GetAuthzVersionRequest(account_id=account_id),
                metadata=metadata(account_id),
                timeout=timeout,
            )
        except grpc.RpcError as error:
            raise upstream_failure(error, "identity", "GetAuthzVersion") from error
        return int(answer.version)

    return fetch
