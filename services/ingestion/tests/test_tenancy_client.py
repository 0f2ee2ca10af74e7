"""The gRPC TenantDirectory against a stand-in tenancy server with the real interceptor."""

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from devstack.ports import free_port
from services.ingestion.adapters.grpc.tenancy import GrpcTenantDirectory
from services.ingestion.service_layer.ports import TenantDirectoryUnavailable
from services.runtime.clients import ServiceChannels
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.errors import NotFound
from services.runtime.grpc_server import context_of_call, start_grpc_server


class StandInTenancy(tenancy_pb2_grpc.TenancyServiceServicer):
    def __init__(self) -> None:
        self.tenants: dict[uuid.UUID, uuid.UUID] = {}  # tenant -> account
        self.callers: list[tuple[str, str]] = []

    async def GetTenant(
        self, request: tenancy_pb2.GetTenantRequest, context: grpc.aio.ServicerContext
    ) -> tenancy_pb2.Tenant:
        ctx = context_of_call()
        self.callers.append((ctx.principal_id, ctx.correlation_id))
        tenant_id = uuid.UUID(request.tenant_id)
        if self.tenants.get(tenant_id) != ctx.account_id:
            raise NotFound("tenant not found")
        return tenancy_pb2.Tenant(id=str(tenant_id), account_id=str(ctx.account_id), name="Site")


@pytest.fixture
async def tenancy(tokens: ContextTokens) -> AsyncIterator[tuple[StandInTenancy, str]]:
    servicer = StandInTenancy()
    address = f"127.0.0.1:{free_port()}"
    server = await start_grpc_server(
        address=address,
        tokens=tokens,
        pb2_modules=[tenancy_pb2],
        registrations=[(tenancy_pb2_grpc.add_TenancyServiceServicer_to_server, servicer)],
    )
    yield servicer, address
    await server.stop(grace=0)


async def test_unknown_and_foreign_tenants_are_reported(
    tenancy: tuple[StandInTenancy, str], tokens: ContextTokens
) -> None:
    servicer, address = tenancy
    account, other_account = uuid.uuid4(), uuid.uuid4()
    mine, foreign, missing = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    servicer.tenants.update({mine: account, foreign: other_account})
    channels = ServiceChannels(RuntimeConfig(tenancy_address=address))
    try:
        directory = GrpcTenantDirectory(channels, tokens)
        unknown = await directory.unknown_tenants(
            account, [mine, foreign, missing], correlation_id="corr-1"
        )
    finally:
        await channels.close()
    assert unknown == [foreign, missing]
    assert set(servicer.callers) == {("service:ingestion", "corr-1")}


async def test_an_unreachable_tenancy_raises_unavailable(tokens: ContextTokens) -> None:
    channels = ServiceChannels(RuntimeConfig(tenancy_address=f"127.0.0.1:{free_port()}"))
    try:
        directory = GrpcTenantDirectory(channels, tokens, timeout_seconds=0.5)
        with pytest.raises(TenantDirectoryUnavailable):
            await directory.unknown_tenants(uuid.uuid4(), [uuid.uuid4()])
    finally:
        await channels.close()
