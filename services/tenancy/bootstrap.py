"""The composition root: backends, unit of work, outbox relay and servicer, built in one place."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.runtime.host import ServiceApp, open_backends
from services.runtime.keywrap import KeyWrapper
from services.runtime.outbox import Outbox, OutboxRelay
from services.tenancy.adapters.db import tables
from services.tenancy.adapters.db.unit_of_work import SqlTransactions
from services.tenancy.adapters.grpc.servicer import TenancyServicer
from services.tenancy.config import TenancyConfig
from services.tenancy.domain.groups import TreeLimits
from services.tenancy.service_layer.ports import KeyWrapping

SCHEMA = tables.SCHEMA
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@asynccontextmanager
async def bootstrap(
    config: TenancyConfig, *, keys: KeyWrapping | None = None
) -> AsyncIterator[ServiceApp]:
    """Open the backends and build the service; everything is closed when the block ends."""
    keys = keys or KeyWrapper(config.key_encryption_key)
    pool_size = config.database_pool_size
    async with open_backends(config, schema=SCHEMA, pool_size=pool_size) as backends:
        outbox = Outbox(tables.outbox)
        relay = OutboxRelay(backends.db, tables.outbox, backends.js)
        servicer = TenancyServicer(
            SqlTransactions(backends.db, outbox),
            keys,
            TreeLimits(max_depth=config.tenant_group_max_depth),
        )
        yield ServiceApp(
            pb2_modules=[tenancy_pb2],
            registrations=[(tenancy_pb2_grpc.add_TenancyServiceServicer_to_server, servicer)],
            loops=[relay.run],
        )
