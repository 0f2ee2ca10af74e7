"""The composition root: backends, store, use-case ports, servicer, consumer, relay, SFTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.ingestion.adapters.db import tables
from services.ingestion.adapters.events.handlers import (
    LOADS_CONTEXT,
    LOADS_DURABLE,
    LOADS_SUBJECTS,
    load_events_handler,
)
from services.ingestion.adapters.grpc.servicer import IngestionServicer
from services.ingestion.adapters.grpc.tenancy import GrpcTenantDirectory
from services.ingestion.adapters.sftp.host_key import load_or_create_host_key
from services.ingestion.adapters.sftp.server import SftpServer
from services.ingestion.adapters.storage.files import LocalFileStore
from services.ingestion.config import IngestionConfig
from services.ingestion.service_layer.ports import Ports, TenantDirectory
from services.runtime.clients import ServiceChannels
from services.runtime.host import ServiceApp, open_backends
from services.runtime.messaging import EventConsumer
from services.runtime.outbox import Outbox, OutboxRelay

SCHEMA = tables.SCHEMA
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@asynccontextmanager
async def bootstrap(
    config: IngestionConfig, *, tenants: TenantDirectory | None = None
) -> AsyncIterator[ServiceApp]:
    """Build the service; `tenants` replaces the gRPC client of tenancy (tests)."""
    channels = ServiceChannels(config)
    async with open_backends(config, schema=SCHEMA) as backends:
        try:
            store = LocalFileStore(
                config.storage_dir,
                chunk_bytes=config.content_chunk_bytes,
                max_upload_bytes=config.max_upload_bytes,
            )
            store.prepare()
            outbox = Outbox(tables.outbox)
            ports = Ports(
                db=backends.db,
                outbox=outbox,
                tenants=tenants or GrpcTenantDirectory(channels, backends.tokens),
                store=store,
            )
            relay = OutboxRelay(backends.db, tables.outbox, backends.js)
            loads = EventConsumer(
                db=backends.db,
                js=backends.js,
                processed=tables.processed_events,
                durable=LOADS_DURABLE,
                context=LOADS_CONTEXT,
                filter_subject=LOADS_SUBJECTS,
                handler=load_events_handler(outbox),
            )
            sftp = SftpServer(
                ports=ports,
                store=store,
                host=config.sftp_host,
                port=config.sftp_port,
                host_key=load_or_create_host_key(config.host_key_path),
            )
            yield ServiceApp(
                pb2_modules=[ingestion_pb2],
                registrations=[
                    (
                        ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
                        IngestionServicer(ports),
                    )
                ],
                loops=[relay.run, loads.run, sftp.run],
            )
        finally:
            await channels.close()
