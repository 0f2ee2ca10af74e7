"""The audit service's composition root: backends, trail, consumers and servicer."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from canopy.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.adapters.db import tables
from services.audit.adapters.db.repository import SqlAuditLog
from services.audit.adapters.events.handlers import EventRecorder, event_consumers
from services.audit.adapters.grpc.servicer import AuditServicer
from services.audit.config import AuditConfig
from services.audit.service_layer.ports import AuditLogFactory
from services.audit.service_layer.trail import AuditTrail
from services.runtime.host import ServiceApp, open_backends

SCHEMA = "audit"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@asynccontextmanager
async def bootstrap(
    config: AuditConfig, *, audit_log: AuditLogFactory = SqlAuditLog
) -> AsyncIterator[ServiceApp]:
    """Open the database and NATS, and wire one consumer per context stream to the trail."""
    async with open_backends(config, schema=SCHEMA) as backends:
        trail = AuditTrail(
            db=backends.db,
            audit_log=audit_log,
            verify_batch_size=config.audit_verify_batch_size,
        )
        consumers = event_consumers(
            db=backends.db,
            js=backends.js,
            processed=tables.processed_events,
            recorder=EventRecorder(trail),
            max_deliver=config.audit_max_deliver,
        )
        servicer = AuditServicer(trail)
        yield ServiceApp(
            pb2_modules=[audit_pb2],
            registrations=[(audit_pb2_grpc.add_AuditServiceServicer_to_server, servicer)],
            loops=[consumer.run for consumer in consumers],
        )
