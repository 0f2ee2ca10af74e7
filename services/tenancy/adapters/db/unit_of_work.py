"""The SQL unit of work: one RLS-scoped transaction, its repositories and the outbox."""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.outbox import Outbox
from services.tenancy.adapters.db.repositories import (
    SqlAccountRepository,
    SqlDataKeyRepository,
    SqlMappingCodeRepository,
    SqlTenantRepository,
)
from services.tenancy.adapters.db.tree import SqlGroupRepository, SqlLocationRepository
from services.tenancy.adapters.events.builders import envelope
from services.tenancy.domain.events import DomainEvent


class SqlUnitOfWork:
    def __init__(self, session: AsyncSession, outbox: Outbox, ctx: CallContext) -> None:
        self.session = session
        self.outbox = outbox
        self.ctx = ctx
        self.accounts = SqlAccountRepository(session)
        self.data_keys = SqlDataKeyRepository(session)
        self.tenants = SqlTenantRepository(session)
        self.groups = SqlGroupRepository(session)
        self.locations = SqlLocationRepository(session)
        self.mapping_codes = SqlMappingCodeRepository(session)

    async def emit(self, events: Iterable[DomainEvent]) -> None:
        """Write the events to the outbox in this transaction; they leave only if it commits."""
        await self.outbox.add(self.session, *(envelope(event, self.ctx) for event in events))


class SqlTransactions:
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    @asynccontextmanager
    async def begin(self, scope: Scope, ctx: CallContext) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.transaction(scope) as session:
            yield SqlUnitOfWork(session, self.outbox, ctx)
