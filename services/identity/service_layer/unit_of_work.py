"""One transaction with identity's repositories and its outbox."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from services.identity.adapters.db.repositories import AuthzVersions, Repositories
from services.identity.adapters.db.tables import IdentityTables
from services.runtime.db import Database, Scope
from services.runtime.outbox import Outbox


@dataclass(frozen=True)
class UnitOfWork:
    repos: Repositories
    outbox: Outbox

    async def publish(self, *events: events_pb2.Event) -> None:
        """Record events in this transaction; they leave only if it commits."""
        await self.outbox.add(self.repos.session, *events)

    async def changed_authorization(self, account_id: uuid.UUID) -> int:
        """Bump the account's authz version in this transaction, before it commits.

        Every change that can alter an answer of Resolve calls this, so a cached answer with an
        older version is never used once the change is visible.
        """
        return await self.repos.authz.bump(account_id)


class IdentityStore:
    """Opens transactions scoped for row-level security, with repositories and the outbox."""

    def __init__(self, db: Database, tables: IdentityTables, outbox: Outbox) -> None:
        self.db = db
        self.tables = tables
        self.outbox = outbox

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        async with self.db.transaction(scope) as session:
            yield self.on(session)

    async def authz_version(self, account_id: uuid.UUID) -> int:
        """The account's authz version, read on its own in one round trip: every change that
        committed before the read is in it."""
        return int(await self.db.read_one(AuthzVersions.current_alone(account_id)) or 0)

    def on(self, session: AsyncSession) -> UnitOfWork:
        """A unit of work on a transaction someone else opened (an event consumer's)."""
        return UnitOfWork(Repositories.on(session, self.tables), self.outbox)
