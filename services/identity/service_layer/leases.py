"""Leases on caching authz versions: taken, extended and released by their holders."""

from services.identity.domain.leases import Lease
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput, PreconditionFailed
from services.runtime.ids import parse_id


class LeaseLost(PreconditionFailed):
    """The lease ran out or was broken: its holder may have missed fences."""


async def renew_lease(
    store: IdentityStore, *, lease_id: str, fence_subject: str, acquire: bool, seconds: float
) -> float:
    """Take (acquire) or extend the lease; the seconds it lasts from the holder's request."""
    lease = Lease(parse_id(lease_id, field="lease_id"), fence_subject.strip())
    async with store.transaction(Scope.nothing()) as uow:
        if acquire:
            if not lease.fence_subject or any(c.isspace() for c in lease.fence_subject):
                raise InvalidInput("fence_subject must be a NATS subject")
            await uow.repos.leases.take(lease, seconds)
        elif not await uow.repos.leases.extend(lease.lease_id, seconds):
            raise LeaseLost("the lease ran out or was broken; take a new one")
    return seconds


async def release_lease(store: IdentityStore, *, lease_id: str) -> None:
    async with store.transaction(Scope.nothing()) as uow:
        await uow.repos.leases.release(parse_id(lease_id, field="lease_id"))
