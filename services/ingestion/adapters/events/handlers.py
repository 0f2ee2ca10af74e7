"""Handlers of the events ingestion consumes: canonical's load progress of its files."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.canonical.v1 import canonical_pb2
from canopy.common.v1 import events_pb2
from services.ingestion.domain.files import RowCounts
from services.ingestion.service_layer import loads
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
