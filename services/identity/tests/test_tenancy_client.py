"""The gRPC TenantDirectory against a stand-in tenancy server: what it sends, how it fails."""

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from devstack.ports import free_port
from services.identity.adapters.grpc.tenancy import GrpcTenantDirectory
from services.identity.service_layer.ports import TenancyUnavailable, UnknownScope
from services.runtime.clients import ServiceChannels
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.grpc_server import context_of_call, start_grpc_server

KNOWN_GROUP = uuid.uuid4()
SUBTREE = {uuid.uuid4(), uuid.uuid4()}
BROKEN_GROUP = uuid.uuid4()


class StandInTenancy(tenancy_pb2_grpc.TenancyServiceServicer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, frozenset[str]]] = []

    async def ExpandTenantScope(self, request, context):  # type: ignore[no-untyped-def]
        ctx = context_of_call()
        self.seen.append((str(ctx.account_id), ctx.permissions))
        if str(BROKEN_GROUP) in request.group_ids:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database down")
        unknown = [g for g in request.group_ids if g != str(KNOWN_GROUP)]
        if unknown:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such tenant group")
        tenants = {str(t) for t in SUBTREE} | set(request.tenant_ids)
        return tenancy_pb2.ExpandTenantScopeResponse(tenant_ids=sorted(tenants))

    async def GetAccount(self, request, context):  # type: ignore[no-untyped-def]
        if request.account == "acme":
            return tenancy_pb2.Account(id=str(KNOWN_GROUP), slug="acme")
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such account")


@pytest.fixture
async def directory(
    runtime_config: RuntimeConfig, tokens: ContextTokens
) -> AsyncIterator[tuple[GrpcTenantDirectory, StandInTenancy]]:
    port = free_port()
    servicer = StandInTenancy()
    server = await start_grpc_server(
        address=f"127.0.0.1:{port}",
        tokens=tokens,
        pb2_modules=[tenancy_pb2],
        registrations=[(tenancy_pb2_grpc.add_TenancyServiceServicer_to_server, servicer)],
    )
    config = runtime_config.model_copy(update={"tenancy_address": f"127.0.0.1:{port}"})
    channels = ServiceChannels(config)
    try:
        yield GrpcTenantDirectory(channels, tokens, timeout_seconds=2), servicer
    finally:
        await channels.close()
        await server.stop(grace=None)


async def test_expanding_asks_tenancy_as_identity_in_the_account(directory) -> None:  # type: ignore[no-untyped-def]
    client, servicer = directory
    account, single = uuid.uuid4(), uuid.uuid4()

    found = await client.expand(account, group_ids=[KNOWN_GROUP], tenant_ids=[single])

    assert found == frozenset(SUBTREE | {single})
    assert servicer.seen == [(str(account), frozenset({"tenancy.tenants:read"}))]


async def test_unknown_scopes_and_outages_become_clear_errors(directory) -> None:  # type: ignore[no-untyped-def]
    client, _ = directory
    with pytest.raises(UnknownScope):
        await client.expand(uuid.uuid4(), group_ids=[uuid.uuid4()], tenant_ids=[])
    with pytest.raises(TenancyUnavailable):
        await client.expand(uuid.uuid4(), group_ids=[BROKEN_GROUP], tenant_ids=[])


async def test_a_slug_is_looked_up_and_an_unknown_one_is_none(directory) -> None:  # type: ignore[no-untyped-def]
    client, _ = directory
    assert await client.account_id_of("acme") == KNOWN_GROUP
    assert await client.account_id_of("nobody") is None
