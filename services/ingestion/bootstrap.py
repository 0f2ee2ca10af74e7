"""The composition root: backends, store, use-case ports, servicer, consumers, relay, SFTP."""

import asyncio
import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.ingestion.adapters.db import tables
from services.ingestion.adapters.events.handlers import (
    ACCOUNTS_CONTEXT,
    ACCOUNTS_DURABLE,
    ACCOUNTS_SUBJECTS,
    LOAD_COMPLETED,
    LOADS_CONTEXT,
    LOADS_DURABLE,
    LOADS_SUBJECTS,
    RECEIPTS_DURABLE,
    accounts_handler,
    load_events_handler,
    receipts_handler,
)
from services.ingestion.adapters.grpc.canonical import GrpcRejectsSource
from services.ingestion.adapters.grpc.servicer import IngestionServicer
from services.ingestion.adapters.grpc.tenancy import GrpcTenantDirectory
from services.ingestion.adapters.sftp.host_key import load_or_create_host_key
from services.ingestion.adapters.sftp.keys import OpenSshKeyReader
from services.ingestion.adapters.sftp.server import ListenerState, SftpServer
from services.ingestion.adapters.storage.files import LocalFileStore
from services.ingestion.config import IngestionConfig
from services.ingestion.domain.limits import Tier, parse_tier
from services.ingestion.domain.lockouts import LockoutPolicy
from services.ingestion.service_layer.dropzones import check_lateness
from services.ingestion.service_layer.ports import (
    Policies,
    Ports,
    RejectsSource,
    TenantDirectory,
)
from services.runtime.clients import ServiceChannels
from services.runtime.host import Loop, ServiceApp, open_backends
from services.runtime.messaging import EventConsumer
from services.runtime.outbox import Outbox, OutboxRelay

SCHEMA = tables.SCHEMA
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)


def policies(config: IngestionConfig) -> Policies:
    cap = config.max_upload_bytes
    return Policies(
        max_file_bytes={
            Tier.STANDARD: min(config.max_file_bytes_standard, cap),
            Tier.PROFESSIONAL: min(config.max_file_bytes_professional, cap),
            Tier.ENTERPRISE: min(config.max_file_bytes_enterprise, cap),
        },
        default_tier=parse_tier(config.default_tier),
        lockout=LockoutPolicy(
            max_failures=config.lockout_failures,
            window=timedelta(seconds=config.lockout_window_seconds),
            lock=timedelta(seconds=config.lockout_seconds),
            max_lock=timedelta(seconds=config.lockout_max_seconds),
            delay_step=timedelta(seconds=config.sign_in_delay_seconds),
            max_delay=timedelta(seconds=config.sign_in_max_delay_seconds),
        ),
        delete_after_disabled=timedelta(days=config.login_delete_after_days),
        delete_confirmation_lifetime=timedelta(seconds=config.delete_confirmation_seconds),
        confirmation_key=hashlib.sha256(
            b"canopy ingestion confirmations\x00" + base64.b64decode(config.context_key or "")
        ).digest(),
    )


def lateness_loop(ports: Ports, every_seconds: float) -> Loop:
    """Checks scheduled zones against their windows until stopped."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await check_lateness(ports=ports)
            except Exception:
                log.exception("lateness check failed; trying again later")
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_seconds)
            except TimeoutError:
                pass

    return run


@asynccontextmanager
async def bootstrap(
    config: IngestionConfig,
    *,
    tenants: TenantDirectory | None = None,
    rejects: RejectsSource | None = None,
) -> AsyncIterator[ServiceApp]:
    """Build the service; `tenants` and `rejects` replace the gRPC clients of tenancy and
    canonical (tests)."""
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
            listener = ListenerState()
            ports = Ports(
                db=backends.db,
                outbox=outbox,
                tenants=tenants or GrpcTenantDirectory(channels, backends.tokens),
                store=store,
                rejects=rejects or GrpcRejectsSource(channels, backends.tokens),
                keys=OpenSshKeyReader(),
                listener=listener,
                policies=policies(config),
            )
            relay = OutboxRelay(backends.db, tables.outbox, backends.js)

            def consumer(**options: object) -> EventConsumer:
                return EventConsumer(
                    db=backends.db,
                    js=backends.js,
                    processed=tables.processed_events,
                    **options,  # type: ignore[arg-type]
                )

            loads = consumer(
                durable=LOADS_DURABLE,
                context=LOADS_CONTEXT,
                filter_subject=LOADS_SUBJECTS,
                handler=load_events_handler(outbox),
            )
            receipts = consumer(
                durable=RECEIPTS_DURABLE,
                context=LOADS_CONTEXT,
                filter_subject=LOAD_COMPLETED,
                handler=receipts_handler(ports),
            )
            accounts = consumer(
                durable=ACCOUNTS_DURABLE,
                context=ACCOUNTS_CONTEXT,
                filter_subject=ACCOUNTS_SUBJECTS,
                handler=accounts_handler(),
            )
            sftp = SftpServer(
                ports=ports,
                store=store,
                host=config.sftp_host,
                port=config.sftp_port,
                host_key=load_or_create_host_key(config.host_key_path),
                state=listener,
                idle_timeout_seconds=config.sftp_idle_timeout_seconds,
                reuse_port=config.sftp_reuse_port,
            )
            yield ServiceApp(
                pb2_modules=[ingestion_pb2],
                registrations=[
                    (
                        ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
                        IngestionServicer(ports),
                    )
                ],
                loops=[
                    relay.run,
                    loads.run,
                    receipts.run,
                    accounts.run,
                    sftp.run,
                    lateness_loop(ports, config.lateness_check_seconds),
                ],
            )
        finally:
            await channels.close()
