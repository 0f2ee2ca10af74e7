"""Fixtures of the ingestion tests: a migrated schema and one running service for the session."""

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from devstack.ports import free_port
from services.ingestion.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.ingestion.config import IngestionConfig
from services.ingestion.tests.helpers import FakeTenantDirectory, Service, wait_for_port
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.migrations import migrate
from tests.support import serving


def ingestion_config(runtime_config: RuntimeConfig, directory: Path) -> IngestionConfig:
    return IngestionConfig(
        **runtime_config.model_dump(),
        grpc_port=0,
        sftp_port=free_port(),
        storage_dir=directory / "store",
        host_key_path=directory / "ssh_host_ed25519_key",
    )


@pytest.fixture(scope="session")
def migrated(runtime_config: RuntimeConfig, tmp_path_factory: pytest.TempPathFactory) -> None:
    config = ingestion_config(runtime_config, tmp_path_factory.mktemp("migrate"))
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    migrate(config, SCHEMA, MIGRATIONS_DIR)  # idempotent


@pytest.fixture(scope="session")
def config(
    migrated: None, runtime_config: RuntimeConfig, tmp_path_factory: pytest.TempPathFactory
) -> IngestionConfig:
    return ingestion_config(runtime_config, tmp_path_factory.mktemp("ingestion"))


@pytest.fixture(scope="session")
async def nats_client(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def service(
    config: IngestionConfig, tokens: ContextTokens, nats_client: NatsClient
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
        )
