"""Event handlers of the canonical context: ingestion received a file, so load it."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.service_layer.load import Loader, LoadFile
from services.runtime.events import unpack

log = logging.getLogger(__name__)

FILE_RECEIVED = "canopy.ingestion.file.received"
LOADER_DURABLE = "canonical-loader"


class FileReceivedHandler:
    """Turns `canopy.ingestion.file.received` into a load, in the consumer's transaction."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    async def __call__(self, event: events_pb2.Event, session: AsyncSession) -> None:
        if event.type != FILE_RECEIVED:
            return
        received = unpack(event, ingestion_pb2.FileReceived)
        assert isinstance(received, ingestion_pb2.FileReceived)
        try:
            command = LoadFile(
                account_id=uuid.UUID(event.account_id),
                file_id=uuid.UUID(received.file_id),
                source_schema=received.source_schema,
                tenant_ids=frozenset(uuid.UUID(t) for t in received.tenant_ids),
                correlation_id=event.correlation_id,
            )
        except ValueError:
            log.error(
                "file.received with an invalid account, file or tenant id; not loaded",
                extra={"fields": {"event_id": event.id, "file_id": received.file_id}},
            )
            return
        await self.loader.load(session, command)
