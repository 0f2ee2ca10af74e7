"""The audit log in PostgreSQL: chain heads locked per account, events appended, read in order."""

import uuid
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.adapters.db.tables import chain_heads, events
from services.audit.domain.chain import GENESIS_HASH, AuditEvent, ChainHead, EventRecord


class SqlAuditLog:
    """Implements `service_layer.ports.AuditLog` on one session (one transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_head(self, account_id: uuid.UUID) -> ChainHead:
        # One round trip creates the head of a new chain or locks the existing one (the no-op
        # update takes the row lock), so appends to one account are serialised.
        statement = (
            insert(chain_heads)
            .values(account_id=account_id, sequence=0, hash=GENESIS_HASH)
            .on_conflict_do_update(
                index_elements=[chain_heads.c.account_id],
                set_={"sequence": chain_heads.c.sequence},
            )
            .returning(chain_heads.c.sequence, chain_heads.c.hash)
        )
        row = (await self.session.execute(statement)).one()
        return ChainHead(account_id, row.sequence, row.hash)

    async def head(self, account_id: uuid.UUID) -> ChainHead | None:
        statement = select(chain_heads.c.sequence, chain_heads.c.hash).where(
            chain_heads.c.account_id == account_id
        )
        row = (await self.session.execute(statement)).first()
        return ChainHead(account_id, row.sequence, row.hash) if row else None

    async def add(self, event: AuditEvent) -> bool:
        record = event.record
        statement = (
            insert(events)
            .values(
                id=event.id,
                account_id=record.account_id,
                sequence=event.sequence,
                event_id=record.event_id,
                type=record.type,
                tenant_id=record.tenant_id,
                actor_id=record.actor_id,
                actor_kind=record.actor_kind,
                source_address=record.source_address,
                correlation_id=record.correlation_id,
                occurred_at=record.occurred_at,
                payload=record.payload,
                prev_hash=event.prev_hash,
                hash=event.hash,
            )
            .on_conflict_do_nothing(index_elements=[events.c.event_id])
            .returning(events.c.id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def move_head(self, head: ChainHead) -> None:
        await self.session.execute(
            update(chain_heads)
            .where(chain_heads.c.account_id == head.account_id)
            .values(sequence=head.sequence, hash=head.hash, updated_at=func.now())
        )

    async def newest_first(
        self,
        account_id: uuid.UUID,
        *,
        before_sequence: int | None,
        limit: int,
        event_type: str | None,
        tenant_ids: frozenset[uuid.UUID] | None,
    ) -> list[AuditEvent]:
        statement = (
            select(events)
            .where(events.c.account_id == account_id)
            .order_by(events.c.sequence.desc())
            .limit(limit)
        )
        if before_sequence is not None:
            statement = statement.where(events.c.sequence < before_sequence)
        if event_type is not None:
            statement = statement.where(events.c.type == event_type)
        if tenant_ids is not None:
            statement = statement.where(events.c.tenant_id.in_(sorted(tenant_ids)))
        rows = (await self.session.execute(statement)).mappings().all()
        return [audit_event_of(row) for row in rows]

    async def in_sequence(
        self, account_id: uuid.UUID, *, up_to: int | None, batch_size: int
    ) -> AsyncGenerator[list[AuditEvent], None]:
        after = 0
        while True:
            statement = (
                select(events)
                .where(events.c.account_id == account_id, events.c.sequence > after)
                .order_by(events.c.sequence)
                .limit(batch_size)
            )
            if up_to is not None:
                statement = statement.where(events.c.sequence <= up_to)
            rows = (await self.session.execute(statement)).mappings().all()
            if not rows:
                return
            batch = [audit_event_of(row) for row in rows]
            yield batch
            if len(rows) < batch_size:
                return
            after = batch[-1].sequence


def audit_event_of(row: Any) -> AuditEvent:
    record = EventRecord(
        event_id=row["event_id"],
        type=row["type"],
        account_id=row["account_id"],
        tenant_id=row["tenant_id"],
        actor_id=row["actor_id"],
        actor_kind=row["actor_kind"],
        source_address=row["source_address"],
        correlation_id=row["correlation_id"],
        occurred_at=row["occurred_at"],
        payload=row["payload"],
    )
    return AuditEvent(
        id=row["id"],
        sequence=row["sequence"],
        record=record,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        recorded_at=row["recorded_at"],
    )
