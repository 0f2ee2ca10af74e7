"""The ports of the load, implemented by calling ingestion and tenancy over gRPC.

Each call carries a context token of the canonical service acting for the account, with
only the permission that call needs.
"""

import uuid
from collections.abc import AsyncGenerator, Collection

import grpc

from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.canonical.service_layer.ports import DataKey, FileUnavailable, KeyUnavailable
from services.runtime.clients import ServiceChannels
from services.runtime.context import ContextTokens, service_context

SERVICE = "canonical"


def _metadata(
    tokens: ContextTokens, account_id: uuid.UUID, permission: str
) -> tuple[tuple[str, str], ...]:
    return tokens.metadata(
        service_context(SERVICE, account_id=account_id, permissions=[permission])
    )


class GrpcFileSource:
    """Streams a file's bytes from ingestion's ReadFileContent."""

    def __init__(self, channels: ServiceChannels, tokens: ContextTokens) -> None:
        self.channels = channels
        self.tokens = tokens

    async def read(
        self, *, account_id: uuid.UUID, file_id: uuid.UUID
    ) -> AsyncGenerator[bytes, None]:
        stub = ingestion_pb2_grpc.IngestionServiceStub(self.channels.channel("ingestion"))
        call = stub.ReadFileContent(
            ingestion_pb2.ReadFileContentRequest(file_id=str(file_id)),
            metadata=_metadata(self.tokens, account_id, "ingestion.files:content"),
        )
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise FileUnavailable(f"file {file_id} is not available from ingestion") from None
            raise
        finally:
            call.cancel()


class GrpcTenantDirectory:
    """Resolves a file's tenant codes with one ResolveTenantCodes call."""

    def __init__(self, channels: ServiceChannels, tokens: ContextTokens) -> None:
        self.channels = channels
        self.tokens = tokens

    async def resolve(
        self, *, account_id: uuid.UUID, source: str, codes: Collection[str]
    ) -> dict[str, uuid.UUID]:
        stub = tenancy_pb2_grpc.TenancyServiceStub(self.channels.channel("tenancy"))
        response = await stub.ResolveTenantCodes(
            tenancy_pb2.ResolveTenantCodesRequest(source=source, codes=list(codes)),
            metadata=_metadata(self.tokens, account_id, "tenancy.tenants:read"),
        )
        return {code: uuid.UUID(tenant_id) for code, tenant_id in response.tenant_ids.items()}


class GrpcKeyProvider:
    """The account's data keys from tenancy's GetDataKey."""

    def __init__(self, channels: ServiceChannels, tokens: ContextTokens) -> None:
        self.channels = channels
        self.tokens = tokens

    async def current(self, *, account_id: uuid.UUID) -> DataKey:
        return await self._get(account_id, 0)

    async def version(self, *, account_id: uuid.UUID, version: int) -> DataKey:
        return await self._get(account_id, version)

    async def _get(self, account_id: uuid.UUID, version: int) -> DataKey:
        stub = tenancy_pb2_grpc.TenancyServiceStub(self.channels.channel("tenancy"))
        try:
            response = await stub.GetDataKey(
                tenancy_pb2.GetDataKeyRequest(version=version),
                metadata=_metadata(self.tokens, account_id, "tenancy.datakeys:use"),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                shown = f"version {version}" if version else "the current version"
                raise KeyUnavailable(f"the account's data key ({shown}) is not available") from None
            raise
        return DataKey(version=response.version, key=response.key)
