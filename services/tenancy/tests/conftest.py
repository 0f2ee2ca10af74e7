"""Fixtures of the tenancy integration tests: a migrated schema and the service on a free port."""

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy

from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.migrations import migrate
from services.tenancy.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.tenancy.config import TenancyConfig
from services.tenancy.tests.helpers import Calls, Published, unique_slug
from tests.support import serving


@pytest.fixture(scope="session")
def tenancy_config(runtime_config: RuntimeConfig) -> TenancyConfig:
    config = TenancyConfig(**runtime_config.model_dump(), grpc_port=0)
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    return config


@pytest.fixture(scope="module")
async def stub(
    tenancy_config: TenancyConfig, tokens: ContextTokens
) -> AsyncIterator[tenancy_pb2_grpc.TenancyServiceStub]:
    async with bootstrap(tenancy_config) as app, serving(app, tokens) as channel:
        yield tenancy_pb2_grpc.TenancyServiceStub(channel)


@pytest.fixture(scope="module")
async def nats_client(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def published(
    nats_client: NatsClient, stub: tenancy_pb2_grpc.TenancyServiceStub
) -> AsyncIterator[Published]:
    """Subscribes to `canopy.tenancy.>` (the service, already up, has made the stream)."""
    seen = Published()

    async def on_message(message: nats.aio.msg.Msg) -> None:
        await seen.events.put(events_pb2.Event.FromString(message.data))
        await message.ack()

    subscription = await nats_client.jetstream().subscribe(
        "canopy.tenancy.>", cb=on_message, deliver_policy=DeliverPolicy.NEW
    )
    yield seen
    await subscription.unsubscribe()


@pytest.fixture(scope="session")
def calls(tokens: ContextTokens) -> Calls:
    return Calls(tokens)


@pytest.fixture
async def account(stub: tenancy_pb2_grpc.TenancyServiceStub, calls: Calls) -> tenancy_pb2.Account:
    return await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name="Acme Motors", slug=unique_slug()),
        metadata=calls.operator(),
    )
