"""What the use cases need from storage, declared here and implemented in adapters/db."""

import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain.chain import AuditEvent, ChainHead


class AuditLog(Protocol):
    """One account's chain and its events, inside the caller's transaction."""

    async def lock_head(self, account_id: uuid.UUID) -> ChainHead:
        """The account's head (genesis if new), locked until the transaction ends."""

    async def head(self, account_id: uuid.UUID) -> ChainHead | None:
        """The account's head as recorded, without locking; None if it has no chain."""

    async def add(self, event: AuditEvent) -> bool:
        """Append `event`; False (and nothing written) if its event id is already recorded."""

    async def move_head(self, head: ChainHead) -> None:
        """Record `head` as the account's new last link."""

    async def newest_first(
        self,
        account_id: uuid.UUID,
        *,
        before_sequence: int | None,
        limit: int,
        event_type: str | None,
        tenant_ids: frozenset[uuid.UUID] | None,
    ) -> list[AuditEvent]:
        """Up to `limit` events below `before_sequence`, newest first."""

    def in_sequence(
        self, account_id: uuid.UUID, *, up_to: int | None, batch_size: int
    ) -> AsyncGenerator[list[AuditEvent], None]:
        """Every event up to sequence `up_to` (all if None) in order, `batch_size` at a time."""


AuditLogFactory = Callable[[AsyncSession], AuditLog]
