"""Handlers of the events ingestion consumes: canonical's load progress of its files (status,
and the receipts written back to the zone) and tenancy's accounts (their tiers)."""

import logging
import uuid
from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.canonical.v1 import canonical_pb2
from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.ingestion.domain.files import RowCounts
from services.ingestion.service_layer import loads, receipts
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import service_context
from services.runtime.errors import InvalidInput
from services.runtime.events import unpack
from services.runtime.messaging import Handler
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)

LOADS_DURABLE = "ingestion-loads"
LOADS_CONTEXT = "canonical"
LOADS_SUBJECTS = "canopy.canonical.load.>"
LOAD_STARTED = "canopy.canonical.load.started"
LOAD_COMPLETED = "canopy.canonical.load.completed"
RECEIPTS_DURABLE = "ingestion-receipts"
ACCOUNTS_DURABLE = "ingestion-accounts"
ACCOUNTS_CONTEXT = "tenancy"
ACCOUNTS_SUBJECTS = "canopy.tenancy.account.>"
ACCOUNT_CREATED = "canopy.tenancy.account.created"


def load_events_handler(outbox: Outbox) -> Handler:
    """Moves a file to processing when its load starts and to its outcome when it completes."""

    async def handle(event: events_pb2.Event, session: AsyncSession) -> None:
        if event.type not in (LOAD_STARTED, LOAD_COMPLETED):
            return
        fields = {"event_id": event.id, "type": event.type}
        try:
            account_id = uuid.UUID(event.account_id)
            ctx = service_context(
                "ingestion",
                account_id=account_id,
                permissions=(),
                correlation_id=event.correlation_id or None,
            )
            if event.type == LOAD_STARTED:
                started = unpack(event, canonical_pb2.LoadStarted)
                assert isinstance(started, canonical_pb2.LoadStarted)
                await loads.mark_load_started(
                    session=session,
                    outbox=outbox,
                    ctx=ctx,
                    account_id=account_id,
                    file_id=uuid.UUID(started.file_id),
                )
            else:
                done = unpack(event, canonical_pb2.LoadCompleted)
                assert isinstance(done, canonical_pb2.LoadCompleted)
                rows = RowCounts(
                    total=done.rows_total,
                    created=done.created,
                    updated=done.updated,
                    unchanged=done.unchanged,
                    rejected=done.rejected,
                )
                await loads.mark_load_completed(
                    session=session,
                    outbox=outbox,
                    ctx=ctx,
                    account_id=account_id,
                    file_id=uuid.UUID(done.file_id),
                    status=done.status,
                    reason=done.reason,
                    rows=rows,
                )
        except (ValueError, InvalidInput) as error:
            # A malformed event will not get better on redelivery: log it and move on.
            log.error("load event ignored: %s", error, extra={"fields": fields})

    return handle


def receipts_handler(ports: Ports) -> Handler:
    """Writes each completed load's receipt (and rejects) into the file's drop zone. A failure
    (canonical unreachable) rolls back and the event is delivered again."""

    async def handle(event: events_pb2.Event, session: AsyncSession) -> None:
        if event.type != LOAD_COMPLETED:
            return
        try:
            account_id = uuid.UUID(event.account_id)
            done = unpack(event, canonical_pb2.LoadCompleted)
            assert isinstance(done, canonical_pb2.LoadCompleted)
            outcome = receipts.LoadOutcome(
                file_id=uuid.UUID(done.file_id),
                status=done.status,
                reason=done.reason,
                rows=RowCounts(
                    total=done.rows_total,
                    created=done.created,
                    updated=done.updated,
                    unchanged=done.unchanged,
                    rejected=done.rejected,
                ),
                completed_at=event.occurred_at.ToDatetime(tzinfo=UTC),
            )
        except (ValueError, InvalidInput) as error:
            log.error("load event ignored: %s", error, extra={"fields": {"event_id": event.id}})
            return
        ctx = service_context(
            "ingestion",
            account_id=account_id,
            permissions=(),
            correlation_id=event.correlation_id or None,
        )
        await receipts.write_receipt(
            ports=ports, session=session, ctx=ctx, account_id=account_id, outcome=outcome
        )

    return handle


def accounts_handler() -> Handler:
    """Keeps each account's tier, which sets the largest file its logins may upload."""

    async def handle(event: events_pb2.Event, session: AsyncSession) -> None:
        if event.type != ACCOUNT_CREATED:
            return
        try:
            created = unpack(event, tenancy_pb2.AccountCreated)
            assert isinstance(created, tenancy_pb2.AccountCreated)
            account_id = uuid.UUID(created.account_id or event.account_id)
            await loads.record_tier(session=session, account_id=account_id, tier=created.tier)
        except (ValueError, InvalidInput) as error:
            log.error("account event ignored: %s", error, extra={"fields": {"event_id": event.id}})

    return handle
