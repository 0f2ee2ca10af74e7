"""Identity under test: migrated once, served once in-process for the whole session."""

from collections.abc import AsyncIterator

import grpc
import nats
import pytest
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2_grpc
from services.identity.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.identity.config import IdentityConfig
from services.identity.tests.fakes import FakeDns, FakeTenantDirectory
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.migrations import migrate
from tests.support import serving


@pytest.fixture(scope="session")
def identity_config(runtime_config: RuntimeConfig) -> IdentityConfig:
    config = IdentityConfig(
        **runtime_config.model_dump(),
        grpc_port=0,
        # Cheap argon2id: the tests check behaviour, not cost.
        argon2_time_cost=1,
        argon2_memory_cost_kib=8,
        argon2_parallelism=1,
    )
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    return config


@pytest.fixture(scope="session")
def tenant_tree() -> FakeTenantDirectory:
    """Tenancy's tenant tree as identity sees it; tests add the groups and tenants they need."""
    return FakeTenantDirectory()


@pytest.fixture(scope="session")
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture(scope="session")
async def identity_channel(
    identity_config: IdentityConfig,
    tokens: ContextTokens,
    tenant_tree: FakeTenantDirectory,
    dns: FakeDns,
) -> AsyncIterator[grpc.aio.Channel]:
    async with (
        bootstrap(identity_config, tenants=tenant_tree, verifier=dns) as app,
        serving(app, tokens) as channel,
    ):
        yield channel


@pytest.fixture
def stub(identity_channel: grpc.aio.Channel) -> identity_pb2_grpc.IdentityServiceStub:
    return identity_pb2_grpc.IdentityServiceStub(identity_channel)


@pytest.fixture(scope="session")
async def nats_client(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()
