"""The gateway's authz lease on a real NATS: versions from memory while it is held, a fresh read
after every fence until the fenced change shows, per-request reads whenever it is not held.

Identity's side of the protocol (fencing before commit, breaking silent holders) is tested in
services/identity/tests/test_authz_leases.py; here identity's lease RPCs are a double and the
test sends the fences."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from gateway.authz import AuthzVersions
from gateway.leases import AuthzLease
from services.runtime.messaging import connect_nats

ACCOUNT = str(uuid.uuid4())


class Refused(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


@dataclass
class Identity:
    """identity's lease RPCs and its versions, as the double the lease talks to."""

    seconds: float = 1.0
    version: int = 7
    refuse: grpc.StatusCode | None = None
    requests: list[identity_pb2.RenewAuthzLeaseRequest] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    reads: int = 0
    # When set, reads wait for it (a read in flight while something else happens).
    gate: asyncio.Event | None = None

    async def renew(self, request: identity_pb2.RenewAuthzLeaseRequest) -> identity_pb2.AuthzLease:
        self.requests.append(request)
        if self.refuse is not None:
            raise Refused(self.refuse)
        return identity_pb2.AuthzLease(lease_id=request.lease_id, seconds=self.seconds)

    async def release(self, lease_id: str) -> None:
        self.released.append(lease_id)

    async def read(self, account_id: str) -> int:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.version

    def subject(self) -> str:
        return next(r.fence_subject for r in reversed(self.requests) if r.acquire)


@dataclass
class Setup:
    identity: Identity
    lease: AuthzLease
    versions: AuthzVersions
    nats: NatsClient

    async def fence(self, version: int, fence_id: str = "f1", *, withdrawn: bool = False) -> None:
        """Tell the holder as identity does; returns once the holder has answered."""
        fence = identity_pb2.AuthzFence(
            fence_id=fence_id, account_id=ACCOUNT, version=version, withdrawn=withdrawn
        )
        await self.nats.request(self.identity.subject(), fence.SerializeToString(), timeout=2)

    async def reads_for(self, calls: int) -> int:
        before = self.identity.reads
        for _ in range(calls):
            await self.versions.current(ACCOUNT)
        return self.identity.reads - before


@pytest.fixture
async def setup(nats_url: str) -> AsyncIterator[Setup]:
    identity = Identity()
    versions: AuthzVersions

    def on_fence(fence: identity_pb2.AuthzFence) -> None:
        versions.fence(fence.account_id, fence.fence_id, fence.version, withdrawn=fence.withdrawn)

    lease = AuthzLease(
        nats_url=nats_url, renew=identity.renew, release=identity.release, on_fence=on_fence
    )
    versions = AuthzVersions(identity.read, lease)
    running = asyncio.ensure_future(lease.run())
    nats = await connect_nats(nats_url, name="test-identity")
    try:
        await until(lambda: lease.held() is not None)
        yield Setup(identity, lease, versions, nats)
    finally:
        running.cancel()
        await asyncio.wait({running}, timeout=5)
        await nats.close()


async def until(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_while_the_lease_is_held_a_version_is_read_once(setup: Setup) -> None:
    assert await setup.reads_for(20) == 1
    assert await setup.versions.current(ACCOUNT) == 7
    taken = [r for r in setup.identity.requests if r.acquire]
    assert len(taken) == 1 and taken[0].fence_subject


async def test_after_a_fence_versions_are_read_until_the_change_shows(setup: Setup) -> None:
    assert await setup.reads_for(3) == 1
    await setup.fence(8)
    # Not committed yet: identity still says 7, so every request reads again.
    assert await setup.reads_for(3) == 3
    setup.identity.version = 8
    assert await setup.reads_for(3) == 1
    assert await setup.versions.current(ACCOUNT) == 8


async def test_a_withdrawn_fence_ends_the_wait(setup: Setup) -> None:
    await setup.versions.current(ACCOUNT)
    await setup.fence(8, "rolled-back")
    await setup.fence(8, "rolled-back", withdrawn=True)
    assert await setup.reads_for(3) == 1


async def test_a_read_that_raced_a_fence_is_not_kept(setup: Setup) -> None:
    identity = setup.identity
    identity.gate = asyncio.Event()
    first = asyncio.ensure_future(setup.versions.current(ACCOUNT))
    await until(lambda: identity.reads == 1)
    await setup.fence(8)  # arrives while the read (of version 7) is in flight
    identity.gate.set()
    assert await first == 7  # the request came before the change committed
    assert await setup.reads_for(2) == 2  # not kept: the change may commit any moment


async def test_when_renewals_fail_the_lease_runs_out_and_every_request_reads(
    setup: Setup,
) -> None:
    await setup.versions.current(ACCOUNT)
    setup.identity.refuse = grpc.StatusCode.UNAVAILABLE
    await until(lambda: setup.lease.held() is None, within=3)
    assert await setup.reads_for(3) == 3
    setup.identity.refuse = None
    await until(lambda: setup.lease.held() is not None, within=3)
    assert await setup.reads_for(3) == 1


async def test_a_lost_lease_is_replaced_and_older_versions_are_not_used(setup: Setup) -> None:
    await setup.versions.current(ACCOUNT)
    epoch = setup.lease.held()
    first = setup.identity.subject()
    setup.identity.refuse = grpc.StatusCode.FAILED_PRECONDITION
    await until(lambda: setup.lease.held() is None, within=3)
    setup.identity.refuse = None
    await until(lambda: setup.lease.held() is not None, within=3)
    assert setup.lease.held() != epoch
    assert setup.identity.subject() != first  # a new lease, listening on a new subject
    assert setup.identity.released  # identity was told to forget the lost one
    assert await setup.reads_for(3) == 1  # read again once under the new lease
