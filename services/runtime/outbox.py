"""The transactional outbox: events are written with the change, then relayed to JetStream."""

import asyncio
import logging
from datetime import UTC, datetime

from nats.js import JetStreamContext
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from services.runtime.db import Database, Scope
from services.runtime.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("subject", Text, nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )


class Outbox:
    def __init__(self, table: Table) -> None:
        self.table = table

    async def add(self, session: AsyncSession, *events: events_pb2.Event) -> None:
        """Record events in the caller's transaction; they leave only if it commits."""
        if events:
            await session.execute(
                self.table.insert(),
                [
                    {"id": e.id, "subject": e.type, "envelope": e.SerializeToString()}
                    for e in events
                ],
            )


class OutboxRelay:
    """Publishes unpublished outbox rows in id order, with the event id as `Nats-Msg-Id`."""

    def __init__(
        self, db: Database, table: Table, js: JetStreamContext, *, batch_size: int = 500
    ) -> None:
        self.db = db
        self.table = table
        self.js = js
        self.batch_size = batch_size

    async def publish_pending(self) -> int:
        rows_query = (
            select(self.table.c.id, self.table.c.subject, self.table.c.envelope)
            .where(self.table.c.published_at.is_(None))
            .order_by(self.table.c.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction(Scope.nothing()) as session:
            rows = (await session.execute(rows_query)).all()
            if not rows:
                return 0
            await asyncio.gather(
                *(
                    self.js.publish(subject, envelope, headers={"Nats-Msg-Id": str(event_id)})
                    for event_id, subject, envelope in rows
                )
            )
            await session.execute(
                update(self.table)
                .where(self.table.c.id.in_([row.id for row in rows]))
                .values(published_at=datetime.now(UTC))
            )
        EVENTS_PUBLISHED.inc(len(rows))
        return len(rows)

    async def run(self, stop: asyncio.Event, *, idle_seconds: float = 0.1) -> None:
        failures = 0
        while not stop.is_set():
            try:
                published = await self.publish_pending()
                failures = 0
            except Exception:
                failures += 1
                log.warning("outbox relay failed; will retry", exc_info=failures == 1)
                published = 0
                idle = min(5.0, idle_seconds * 2**failures)
            else:
                idle = 0 if published == self.batch_size else idle_seconds
            if idle:
                try:
                    await asyncio.wait_for(stop.wait(), idle)
                except TimeoutError:
                    pass
