"""The composition root of the canonical service: backends, ports, loops and the servicer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from services.canonical.adapters.db import tables
from services.canonical.adapters.events.handlers import (
    FILE_RECEIVED,
    LOAD_WORKER_DURABLE,
    LOADER_DURABLE,
    FileReceivedHandler,
)
from services.canonical.adapters.grpc.jobs import CanonicalServicerWithJobs
from services.canonical.adapters.grpc.peers import (
    GrpcFileSource,
    GrpcKeyProvider,
    GrpcTenantDirectory,
)
from services.canonical.config import CanonicalConfig
from services.canonical.service_layer.jobs import LOAD_JOB, LoadJobs
from services.canonical.service_layer.load import Loader
from services.canonical.service_layer.ports import FileSource, KeyProvider, TenantDirectory
from services.runtime.clients import ServiceChannels
from services.runtime.host import ServiceApp, open_backends
from services.runtime.jobs import JobWorker, ensure_job_stream
from services.runtime.messaging import EventConsumer
from services.runtime.outbox import Outbox, OutboxRelay

SCHEMA = "canonical"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@asynccontextmanager
async def bootstrap(
    config: CanonicalConfig,
    *,
    files: FileSource | None = None,
    tenants: TenantDirectory | None = None,
    keys: KeyProvider | None = None,
) -> AsyncIterator[ServiceApp]:
    """Everything the service runs; tests pass fakes for the ports to ingestion and tenancy."""
    async with open_backends(config, schema=SCHEMA) as backends:
        await ensure_job_stream(backends.js, replicas=config.nats_stream_replicas)
        channels = ServiceChannels(config)
        try:
            files = files or GrpcFileSource(channels, backends.tokens)
            tenants = tenants or GrpcTenantDirectory(channels, backends.tokens)
            keys = keys or GrpcKeyProvider(channels, backends.tokens)
            outbox = Outbox(tables.outbox)
            relay = OutboxRelay(backends.db, tables.outbox, backends.js)
            loader = Loader(
                db=backends.db,
                outbox=outbox,
                files=files,
                tenants=tenants,
                keys=keys,
                batch_size=config.load_batch_size,
                workers=config.load_workers,
                parallel_min_bytes=config.load_parallel_min_bytes,
                block_bytes=config.load_block_bytes,
            )
            # file.received -> a load job (row and queue message in one transaction).
            receiver = EventConsumer(
                db=backends.db,
                js=backends.js,
                processed=tables.processed_events,
                durable=LOADER_DURABLE,
                context="ingestion",
                handler=FileReceivedHandler(outbox),
                filter_subject=FILE_RECEIVED,
                max_deliver=config.load_max_deliver,
            )
            load_jobs = LoadJobs(
                db=backends.db,
                outbox=outbox,
                loader=loader,
                progress_rows=config.load_progress_rows,
            )
            worker = JobWorker(
                js=backends.js,
                subject=LOAD_JOB,
                durable=LOAD_WORKER_DURABLE,
                handler=load_jobs.run,
                give_up=load_jobs.give_up,
                on_retry=load_jobs.retrying,
                max_attempts=config.load_max_deliver,
                ack_wait_seconds=config.load_ack_wait_seconds,
                backoff_seconds=config.load_retry_seconds,
                max_backoff_seconds=config.load_retry_max_seconds,
            )
            servicer = CanonicalServicerWithJobs(
                db=backends.db, outbox=outbox, keys=keys, files=files, tenants=tenants
            )
            yield ServiceApp(
                pb2_modules=[canonical_pb2],
                registrations=[
                    (canonical_pb2_grpc.add_CanonicalServiceServicer_to_server, servicer)
                ],
                loops=[relay.run, partial(receiver.run, batch=20), worker.run],
            )
        finally:
            await channels.close()
