"""Fixtures of the ingestion tests: a migrated schema, a stand-in canonical serving
ExportRejects, and one running service for the session."""

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from devstack.ports import free_port
from services.ingestion.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.ingestion.config import IngestionConfig
from services.ingestion.tests.helpers import (
    MIB,
    FakeTenantDirectory,
    Service,
    StandInCanonical,
    wait_for_port,
)
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.grpc_server import start_grpc_server
from services.runtime.migrations import migrate
from tests.support import serving


def ingestion_config(
    runtime_config: RuntimeConfig, directory: Path, canonical_address: str = ""
) -> IngestionConfig:
    extra = {"canonical_address": canonical_address} if canonical_address else {}
    return IngestionConfig(
        **{**runtime_config.model_dump(), **extra},
        grpc_port=0,
        sftp_port=free_port(),
        storage_dir=directory / "store",
        host_key_path=directory / "ssh_host_ed25519_key",
        max_file_bytes_standard=3 * MIB,
        max_file_bytes_professional=6 * MIB,
        sign_in_delay_seconds=0,
        lockout_failures=3,  # the default is 5; fewer keeps the lockout tests quick
        login_delete_after_days=0,
        lateness_check_seconds=0.2,
    )


@pytest.fixture(scope="session")
async def canonical(tokens: ContextTokens) -> AsyncIterator[StandInCanonical]:
    """canonical's ExportRejects on a real gRPC server, checking the caller's permission."""
    stand_in = StandInCanonical()
    address = f"127.0.0.1:{free_port()}"
    server = await start_grpc_server(
        address=address,
        tokens=tokens,
        pb2_modules=[canonical_pb2],
        registrations=[(canonical_pb2_grpc.add_CanonicalServiceServicer_to_server, stand_in)],
    )
    stand_in.address = address
    yield stand_in
    await server.stop(grace=1)


@pytest.fixture(scope="session")
def migrated(runtime_config: RuntimeConfig, tmp_path_factory: pytest.TempPathFactory) -> None:
    config = ingestion_config(runtime_config, tmp_path_factory.mktemp("migrate"))
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    migrate(config, SCHEMA, MIGRATIONS_DIR)  # idempotent


@pytest.fixture(scope="session")
def config(
    migrated: None,
    runtime_config: RuntimeConfig,
    tmp_path_factory: pytest.TempPathFactory,
    canonical: StandInCanonical,
) -> IngestionConfig:
    return ingestion_config(runtime_config, tmp_path_factory.mktemp("ingestion"), canonical.address)


@pytest.fixture(scope="session")
async def nats_client(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def service(
    config: IngestionConfig,
    tokens: ContextTokens,
    nats_client: NatsClient,
    canonical: StandInCanonical,
) -> AsyncIterator[Service]:
    tenants = FakeTenantDirectory()
    async with bootstrap(config, tenants=tenants) as app, serving(app, tokens) as channel:
        await wait_for_port(config.sftp_host, config.sftp_port)
        yield Service(
            channel=channel,
            config=config,
            tokens=tokens,
            tenants=tenants,
            js=nats_client.jetstream(),
            canonical=canonical,
        )
