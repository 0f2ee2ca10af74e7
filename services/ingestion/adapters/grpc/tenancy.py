"""The TenantDirectory port over tenancy's gRPC API."""

import asyncio
import uuid
from collections.abc import Sequence

import grpc

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.ingestion.service_layer.ports import TenantDirectoryUnavailable
from services.runtime.clients import ServiceChannels
from services.runtime.context import ContextTokens, service_context

TENANTS_READ = "tenancy.tenants:read"


class GrpcTenantDirectory:
    """Asks tenancy for each tenant (a drop zone names a handful), a few calls at a time."""

    def __init__(
        self,
        channels: ServiceChannels,
        tokens: ContextTokens,
        *,
        timeout_seconds: float = 5.0,
        concurrency: int = 16,
    ) -> None:
        self.channels = channels
        self.tokens = tokens
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency

    async def unknown_tenants(
        self,
        account_id: uuid.UUID,
        tenant_ids: Sequence[uuid.UUID],
        *,
        correlation_id: str | None = None,
    ) -> list[uuid.UUID]:
        stub = tenancy_pb2_grpc.TenancyServiceStub(self.channels.channel("tenancy"))
        ctx = service_context(
            "ingestion",
            account_id=account_id,
            permissions=[TENANTS_READ],
            correlation_id=correlation_id,
        )
        metadata = self.tokens.metadata(ctx)
        gate = asyncio.Semaphore(self.concurrency)

        async def exists(tenant_id: uuid.UUID) -> bool:
            request = tenancy_pb2.GetTenantRequest(tenant_id=str(tenant_id))
            async with gate:
                try:
                    tenant = await stub.GetTenant(
                        request, metadata=metadata, timeout=self.timeout_seconds
                    )
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.NOT_FOUND:
                        return False
                    raise TenantDirectoryUnavailable(
                        f"tenancy could not confirm the tenants ({error.code().name}); try again"
                    ) from None
            return tenant.account_id in ("", str(account_id))

        found = await asyncio.gather(*(exists(t) for t in tenant_ids))
        return [t for t, ok in zip(tenant_ids, found, strict=True) if not ok]
