"""NATS JetStream: connecting, the one stream per context, and durable event consumers."""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, Uuid, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from services.runtime.db import Database, Scope
from services.runtime.events import CONTEXTS, stream_name, stream_subjects
from services.runtime.logs import correlation_id
from services.runtime.metrics import EVENTS_HANDLED

log = logging.getLogger(__name__)

Handler = Callable[[events_pb2.Event, AsyncSession], Awaitable[None]]


async def connect_nats(url: str, *, name: str, **callbacks: Any) -> NatsClient:
    """A client that reconnects for ever; `callbacks` as nats.connect takes them."""
    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        **callbacks,
    )


async def ensure_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create (or keep) one stream per context; idempotent, run by every service at start."""
    for context in CONTEXTS:
        config = StreamConfig(
            name=stream_name(context),
            subjects=stream_subjects(context),
            duplicate_window=300,
            num_replicas=replicas,
        )
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)


def processed_events_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


def scope_of_event(event: events_pb2.Event) -> Scope:
    return Scope.account(uuid.UUID(event.account_id)) if event.account_id else Scope.nothing()


class EventConsumer:
    """A durable pull consumer that handles each event once, in one transaction.

    The event id is recorded in `processed_events` in the same transaction as the handler's
    writes, so a redelivery after a crash does nothing twice. Failures are redelivered with
    backoff up to `max_deliver` times, then terminated and logged.
    """

    def __init__(
        self,
        *,
        db: Database,
        js: JetStreamContext,
        processed: Table,
        durable: str,
        context: str,
        handler: Handler,
        filter_subject: str | None = None,
        max_deliver: int = 8,
        ack_wait_seconds: float = 60,
    ) -> None:
        self.db = db
        self.js = js
        self.processed = processed
        self.durable = durable
        self.stream = stream_name(context)
        self.filter_subject = filter_subject or stream_subjects(context)[0]
        self.handler = handler
        self.max_deliver = max_deliver
        self.ack_wait_seconds = ack_wait_seconds

    async def run(self, stop: asyncio.Event, *, batch: int = 50) -> None:
        subscription = await self.js.pull_subscribe(
            self.filter_subject,
            durable=self.durable,
            stream=self.stream,
            config=ConsumerConfig(
                ack_wait=self.ack_wait_seconds,
                max_deliver=self.max_deliver,
                deliver_policy=DeliverPolicy.ALL,
            ),
        )
        while not stop.is_set():
            try:
                messages = await subscription.fetch(batch, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception:
                log.warning("fetch failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for message in messages:
                await self.handle(message)
        # An open pull subscription stalls the connection's drain for its whole timeout (30 s).
        try:
            await subscription.unsubscribe()
        except Exception:
            log.debug("unsubscribe at stop failed", exc_info=True)

    async def handle(self, message: Msg) -> None:
        try:
            event = events_pb2.Event.FromString(message.data)
            event_id = uuid.UUID(event.id)
        except Exception:
            log.error(
                "undecodable event terminated", extra={"fields": {"subject": message.subject}}
            )
            await message.term()
            return
        correlation_id.set(event.correlation_id)
        heartbeat = asyncio.create_task(self._keep_alive(message))
        try:
            async with self.db.transaction(scope_of_event(event)) as session:
                if await self._first_delivery(session, event_id):
                    await self.handler(event, session)
        except Exception:
            EVENTS_HANDLED.labels(self.durable, "failed").inc()
            await self._retry_or_give_up(message, event)
            return
        finally:
            heartbeat.cancel()
        await message.ack()
        EVENTS_HANDLED.labels(self.durable, "handled").inc()

    async def _first_delivery(self, session: AsyncSession, event_id: uuid.UUID) -> bool:
        mark = (
            insert(self.processed)
            .values(consumer=self.durable, event_id=event_id)
            .on_conflict_do_nothing()
            .returning(self.processed.c.event_id)
        )
        return (await session.execute(mark)).first() is not None

    async def _keep_alive(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(self.ack_wait_seconds / 3)
            await message.in_progress()

    async def _retry_or_give_up(self, message: Msg, event: events_pb2.Event) -> None:
        delivered = message.metadata.num_delivered
        fields = {"event_id": event.id, "type": event.type, "delivered": delivered}
        if delivered >= self.max_deliver:
            log.exception("event handling failed for good", extra={"fields": fields})
            await message.term()
        else:
            log.warning(
                "event handling failed; redelivering", exc_info=True, extra={"fields": fields}
            )
            await message.nak(delay=min(30.0, 0.5 * 2**delivered))
