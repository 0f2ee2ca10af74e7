"""This gateway process's lease on caching authz versions.

While the lease is held, identity sends every authorization change to this process (an
AuthzFence on the lease's own NATS subject) before the change commits, and waits for the answer
or for the lease to run out. So a version learned while the lease was held stays current until
a fence for its account arrives: requests need no GetAuthzVersion round trip of their own.

The lease counts as held only until `seconds` after the renewal that granted it was *sent*
(less a margin), so it always runs out here before identity stops fencing it. Losing the NATS
connection or a renewal that identity refuses drops it at once; every new lease starts a new
epoch, and versions learned under an older epoch are not used again.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import grpc
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from canopy.identity.v1 import identity_pb2
from services.runtime.messaging import connect_nats

log = logging.getLogger(__name__)

Renew = Callable[[identity_pb2.RenewAuthzLeaseRequest], Awaitable[identity_pb2.AuthzLease]]
Release = Callable[[str], Awaitable[None]]
OnFence = Callable[[identity_pb2.AuthzFence], None]

# The share of the granted time this process trusts the lease (clocks may run at other rates).
TRUSTED_SHARE = 0.8
RETRY_SECONDS = 0.5


class AuthzLease:
    def __init__(
        self,
        *,
        nats_url: str,
        renew: Renew,
        release: Release,
        on_fence: OnFence,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nats_url = nats_url
        self._renew = renew
        self._release = release
        self._on_fence = on_fence
        self._clock = clock
        self._nc: NatsClient | None = None
        self._lease_id: str | None = None
        self._subscription = None  # type: ignore[var-annotated]
        self._held_until = 0.0
        self._failing = False
        self._releases: set[asyncio.Task[None]] = set()
        self.epoch = 0

    def held(self) -> int | None:
        """The epoch of the lease while it is held; None while cached versions must not be used."""
        return self.epoch if self._clock() < self._held_until else None

    async def run(self) -> None:
        """Take the lease and keep it, until cancelled; then release it."""
        try:
            self._nc = await connect_nats(
                self._nats_url, name="gateway", disconnected_cb=self._disconnected
            )
            while True:
                pause = await self._keep()
                await asyncio.sleep(pause)
        finally:
            await self._close()

    async def _keep(self) -> float:
        """Take or extend the lease once; the seconds until the next try."""
        try:
            seconds = await (self._take() if self._lease_id is None else self._extend())
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - identity or NATS away: cache off, retry
            if not self._failing:
                log.warning(
                    "authz lease not renewed; versions are read per request once it runs out",
                    extra={"fields": {"error": type(error).__name__}},
                )
            self._failing = True
            return RETRY_SECONDS
        self._failing = False
        return seconds

    async def _take(self) -> float:
        assert self._nc is not None
        lease_id = str(uuid.uuid4())
        subject = self._nc.new_inbox()
        # Listening first: no fence for the lease can be sent before it exists.
        subscription = await self._nc.subscribe(subject, cb=self._fenced)
        try:
            seconds = await self._ask(lease_id, subject, acquire=True)
        except BaseException:
            await subscription.unsubscribe()
            raise
        self._lease_id, self._subscription = lease_id, subscription
        return seconds

    async def _extend(self) -> float:
        assert self._lease_id is not None
        try:
            return await self._ask(self._lease_id, "", acquire=False)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                log.warning("authz lease lost; taking a new one")
                await self._drop()
                return 0.0
            raise

    async def _ask(self, lease_id: str, subject: str, *, acquire: bool) -> float:
        sent = self._clock()
        answer = await self._renew(
            identity_pb2.RenewAuthzLeaseRequest(
                lease_id=lease_id, fence_subject=subject, acquire=acquire
            )
        )
        if acquire or sent >= self._held_until:
            self.epoch += 1  # versions learned before a lapse are not trusted again
        self._held_until = sent + answer.seconds * TRUSTED_SHARE
        return answer.seconds / 3

    async def _fenced(self, msg: Msg) -> None:
        fence = identity_pb2.AuthzFence.FromString(msg.data)
        self._on_fence(fence)  # before the answer: identity commits once it has it
        await msg.respond(b"")

    async def _disconnected(self) -> None:
        # Fences may be missed while away: stop trusting the lease now, take a new one later.
        await self._drop()

    async def _drop(self) -> None:
        """Stop trusting the lease now; identity forgets it (so fences stop waiting for it)."""
        self._held_until = 0.0
        self.epoch += 1
        lease_id, self._lease_id = self._lease_id, None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        if lease_id is not None:
            task = asyncio.get_running_loop().create_task(self._release_quietly(lease_id))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def _release_quietly(self, lease_id: str) -> None:
        with contextlib.suppress(Exception):
            await self._release(lease_id)

    async def _close(self) -> None:
        await self._drop()
        if self._releases:
            await asyncio.wait(self._releases, timeout=2.0)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
