"""The TenantDirectory port over tenancy's gRPC API."""

import uuid
from collections.abc import Collection

import grpc

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.identity.service_layer.ports import TenancyUnavailable, UnknownScope
from services.runtime.clients import ServiceChannels
from services.runtime.context import ContextTokens, service_context

TENANTS_READ = "tenancy.tenants:read"
ACCOUNTS_READ = "tenancy.accounts:read"


class GrpcTenantDirectory:
    """Asks tenancy, as the identity service, about one account's tenant tree."""

    def __init__(
        self, channels: ServiceChannels, tokens: ContextTokens, *, timeout_seconds: float = 5.0
    ) -> None:
        self.channels = channels
        self.tokens = tokens
        self.timeout_seconds = timeout_seconds

    def _stub(self) -> tenancy_pb2_grpc.TenancyServiceStub:
        return tenancy_pb2_grpc.TenancyServiceStub(self.channels.channel("tenancy"))

    async def expand(
        self,
        account_id: uuid.UUID,
        *,
        group_ids: Collection[uuid.UUID],
        tenant_ids: Collection[uuid.UUID],
        correlation_id: str | None = None,
    ) -> frozenset[uuid.UUID]:
        ctx = service_context(
            "identity",
            account_id=account_id,
            permissions=[TENANTS_READ],
            correlation_id=correlation_id,
        )
        request = tenancy_pb2.ExpandTenantScopeRequest(
            group_ids=sorted(str(g) for g in group_ids),
            tenant_ids=sorted(str(t) for t in tenant_ids),
        )
        try:
            response = await self._stub().ExpandTenantScope(
                request, metadata=self.tokens.metadata(ctx), timeout=self.timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise UnknownScope(
                    f"tenancy does not know that scope in this account: {error.details()}"
                ) from None
            raise TenancyUnavailable(
                f"tenancy could not expand the tenant scope ({error.code().name}); try again"
            ) from None
        try:
            return frozenset(uuid.UUID(t) for t in response.tenant_ids)
        except ValueError:
            raise TenancyUnavailable("tenancy answered with a malformed tenant id") from None

    async def account_id_of(
        self, account: str, *, correlation_id: str | None = None
    ) -> uuid.UUID | None:
        ctx = service_context(
            "identity", account_id=None, permissions=[ACCOUNTS_READ], correlation_id=correlation_id
        )
        try:
            found = await self._stub().GetAccount(
                tenancy_pb2.GetAccountRequest(account=account),
                metadata=self.tokens.metadata(ctx),
                timeout=self.timeout_seconds,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise TenancyUnavailable(
                f"tenancy could not look the account up ({error.code().name}); try again"
            ) from None
        return uuid.UUID(found.id) if found.id else None
