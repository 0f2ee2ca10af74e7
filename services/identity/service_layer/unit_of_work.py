"""One transaction with identity's repositories and its outbox."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from services.identity.adapters.db.repositories import AuthzVersions, Repositories
from services.identity.adapters.db.tables import IdentityTables
from services.identity.domain.leases import Fence, Lease
from services.identity.service_layer.ports import FenceNotifier
from services.runtime.db import Database, Scope
from services.runtime.ids import new_id
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitOfWork:
    repos: Repositories
    outbox: Outbox
    fences: FenceNotifier
    # Fences told in this transaction, with their holders: withdrawn if it rolls back.
    told: list[tuple[list[Lease], Fence]] = field(default_factory=list)

    async def publish(self, *events: events_pb2.Event) -> None:
        """Record events in this transaction; they leave only if it commits."""
        await self.outbox.add(self.repos.session, *events)

    async def changed_authorization(self, account_id: uuid.UUID) -> int:
        """Bump the account's authz version in this transaction, and fence it before it commits.

        Every change that can alter an answer of Resolve calls this, so a cached answer with an
        older version is never used once the change is visible: holders of a lease on caching
        versions hear of it first (or their lease is broken and has run out).
        """
        version = await self.repos.authz.bump(account_id)
        await self._fence(Fence(new_id(), account_id, version))
        return version

    async def _fence(self, fence: Fence) -> None:
        await self.repos.leases.hold_for_fencing()
        holders = await self.repos.leases.live()
        if not holders:
            return
        self.told.append((holders, fence))
        silent = await self.fences.tell(holders, fence)
        if silent:
            wait = await self.repos.leases.break_leases(silent)
            log.warning(
                "authz lease holders did not acknowledge a fence; their leases are broken",
                extra={"fields": {"leases": [str(s) for s in silent], "wait_seconds": wait}},
            )
            await asyncio.sleep(wait)


class IdentityStore:
    """Opens transactions scoped for row-level security, with repositories and the outbox."""

    def __init__(
        self, db: Database, tables: IdentityTables, outbox: Outbox, fences: FenceNotifier
    ) -> None:
        self.db = db
        self.tables = tables
        self.outbox = outbox
        self.fences = fences

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        uow: UnitOfWork | None = None
        try:
            async with self.db.transaction(scope) as session:
                uow = self.on(session)
                yield uow
        except BaseException:
            if uow is not None:
                await asyncio.shield(self._withdraw(uow))
            raise

    async def authz_version(self, account_id: uuid.UUID) -> int:
        """The account's authz version, read on its own in one round trip: every change that
        committed before the read is in it."""
        return int(await self.db.read_one(AuthzVersions.current_alone(account_id)) or 0)

    def on(self, session: AsyncSession) -> UnitOfWork:
        """A unit of work on a transaction someone else opened (an event consumer's)."""
        return UnitOfWork(Repositories.on(session, self.tables), self.outbox, self.fences)

    async def _withdraw(self, uow: UnitOfWork) -> None:
        for holders, fence in uow.told:
            await self.fences.withdraw(holders, fence)
