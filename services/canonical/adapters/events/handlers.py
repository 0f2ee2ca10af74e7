"""Event handlers of the canonical context: ingestion received a file, so queue its load."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.service_layer.jobs import QueueLoad, queue_load
from services.runtime.events import unpack
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)

FILE_RECEIVED = "canopy.ingestion.file.received"
LOADER_DURABLE = "canonical-loader"
LOAD_WORKER_DURABLE = "canonical-load-worker"


class FileReceivedHandler:
    """Turns `canopy.ingestion.file.received` into a queued load job, in the consumer's
    transaction (which also marks the event processed): one job per event, exactly once."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, event: events_pb2.Event, session: AsyncSession) -> None:
        if event.type != FILE_RECEIVED:
            return
        received = unpack(event, ingestion_pb2.FileReceived)
        assert isinstance(received, ingestion_pb2.FileReceived)
        try:
            command = QueueLoad(
                account_id=uuid.UUID(event.account_id),
                file_id=uuid.UUID(received.file_id),
                file_name=received.name,
                size_bytes=received.size_bytes,
                source_schema=received.source_schema,
                tenant_ids=frozenset(uuid.UUID(t) for t in received.tenant_ids),
                reprocess=received.reprocess,
                event_id=uuid.UUID(event.id),
                correlation_id=event.correlation_id,
            )
        except ValueError:
            log.error(
                "file.received with an invalid account, file or tenant id; not loaded",
                extra={"fields": {"event_id": event.id, "file_id": received.file_id}},
            )
            return
        await queue_load(session, self.outbox, command)
