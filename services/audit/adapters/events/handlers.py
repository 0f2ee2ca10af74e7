"""One durable consumer per context stream, each appending every event to the audit trail."""

from nats.js import JetStreamContext
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from services.audit.adapters.events.envelopes import record_of, register_contract_types
from services.audit.domain.chain import PLATFORM_ACCOUNT_ID
from services.audit.service_layer.trail import AuditTrail
from services.runtime.db import SET_CONTEXT, Database, Scope
from services.runtime.events import CONTEXTS
from services.runtime.messaging import EventConsumer


class EventRecorder:
    """The consumers' handler: the envelope becomes a record in its account's chain."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        register_contract_types()

    async def __call__(self, event: events_pb2.Event, session: AsyncSession) -> None:
        record = record_of(event)
        if not event.account_id:
            # The consumer scoped the session to no account; platform events have a chain too.
            await session.execute(SET_CONTEXT, Scope.account(PLATFORM_ACCOUNT_ID).settings())
        await self.trail.record(session, record=record)


def durable_name(context: str) -> str:
    return f"audit-{context}"


def event_consumers(
    *,
    db: Database,
    js: JetStreamContext,
    processed: Table,
    recorder: EventRecorder,
    max_deliver: int,
) -> list[EventConsumer]:
    """A durable consumer of every context's stream (`canopy.<context>.>`), audit's own too."""
    return [
        EventConsumer(
            db=db,
            js=js,
            processed=processed,
            durable=durable_name(context),
            context=context,
            handler=recorder,
            max_deliver=max_deliver,
        )
        for context in CONTEXTS
    ]
