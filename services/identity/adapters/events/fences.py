"""Fences over NATS core request/reply: one request per lease holder, answered once heard."""

import asyncio
import logging
import uuid
from collections.abc import Sequence

from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from services.identity.domain.leases import Fence, Lease

log = logging.getLogger(__name__)


def fence_message(fence: Fence, *, withdrawn: bool = False) -> bytes:
    return identity_pb2.AuthzFence(
        fence_id=str(fence.fence_id),
        account_id=str(fence.account_id),
        version=fence.version,
        withdrawn=withdrawn,
    ).SerializeToString()


class NatsFences:
    def __init__(self, nc: NatsClient, *, ack_timeout: float) -> None:
        self.nc = nc
        self.ack_timeout = ack_timeout

    async def tell(self, holders: Sequence[Lease], fence: Fence) -> list[uuid.UUID]:
        payload = fence_message(fence)
        heard = await asyncio.gather(*(self._ask(h.fence_subject, payload) for h in holders))
        return [h.lease_id for h, ok in zip(holders, heard, strict=True) if not ok]

    async def withdraw(self, holders: Sequence[Lease], fence: Fence) -> None:
        payload = fence_message(fence, withdrawn=True)
        await asyncio.gather(*(self._ask(h.fence_subject, payload) for h in holders))

    async def _ask(self, subject: str, payload: bytes) -> bool:
        try:
            await self.nc.request(subject, payload, timeout=self.ack_timeout)
        except Exception as error:  # noqa: BLE001 - no answer, whatever the cause
            log.warning(
                "a lease holder did not answer a fence",
                extra={"fields": {"subject": subject, "error": type(error).__name__}},
            )
            return False
        return True
