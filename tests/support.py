"""Helpers for tests that run a service in-process on a free port."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import grpc

from devstack.ports import free_port
from services.runtime.context import CallContext, ContextTokens
from services.runtime.grpc_server import start_grpc_server
from services.runtime.host import ServiceApp


@asynccontextmanager
async def serving(app: ServiceApp, tokens: ContextTokens) -> AsyncIterator[grpc.aio.Channel]:
    """Serve `app` (gRPC and its background loops) and yield a channel to it."""
    address = f"127.0.0.1:{free_port()}"
    server = await start_grpc_server(
        address=address, tokens=tokens, pb2_modules=app.pb2_modules, registrations=app.registrations
    )
    stop = asyncio.Event()
    loops = [asyncio.create_task(run(stop)) for run in app.loops]
    channel = grpc.aio.insecure_channel(address)
    try:
        yield channel
    finally:
        stop.set()
        await channel.close()
        await server.stop(grace=1)
        if loops:
            await asyncio.wait(loops, timeout=5)
        for task in loops:
            task.cancel()


def caller(
    account_id: uuid.UUID | None,
    permissions: Iterable[str],
    *,
    principal_id: str | None = None,
    kind: str = "user",
    tenant_ids: Iterable[uuid.UUID] | None = None,
) -> CallContext:
    return CallContext(
        principal_id=principal_id or str(uuid.uuid4()),
        principal_kind=kind,
        account_id=account_id,
        permissions=frozenset(permissions),
        tenant_ids=None if tenant_ids is None else frozenset(tenant_ids),
    )
