"""The RejectsSource port over canonical's internal ExportRejects RPC."""

import uuid
from collections.abc import AsyncIterator

import grpc

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from services.ingestion.service_layer.ports import RejectsUnavailable
from services.runtime.clients import ServiceChannels
from services.runtime.context import ContextTokens, service_context

REJECTS_EXPORT = "canonical.rejects:export"
# Answers that will be the same next time: the receipt is then written without the rejects.
PERMANENT = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
# Answers that will be the same next time: the receipt is written without the rejects.
PERMANENT = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)


class GrpcRejectsSource:
    def __init__(
        self, channels: ServiceChannels, tokens: ContextTokens, *, timeout_seconds: float = 300
    ) -> None:
        self.channels = channels
        self.tokens = tokens
        self.timeout_seconds = timeout_seconds

    async def export(
        self, account_id: uuid.UUID, file_id: uuid.UUID, *, correlation_id: str | None = None
    ) -> AsyncIterator[bytes]:
        stub = canonical_pb2_grpc.CanonicalServiceStub(self.channels.channel("canonical"))
        ctx = service_context(
            "ingestion",
            account_id=account_id,
            permissions=[REJECTS_EXPORT],
            correlation_id=correlation_id,
        )
        call = stub.ExportRejects(
            canonical_pb2.ExportRejectsRequest(file_id=str(file_id)),
            metadata=self.tokens.metadata(ctx),
            timeout=self.timeout_seconds,
        )
        try:
            async for chunk in call:
                yield chunk.data
        except grpc.aio.AioRpcError as error:
            raise RejectsUnavailable(
                f"canonical could not export the rejects of file {file_id} ({error.code().name})",
                permanent=error.code() in PERMANENT,
            ) from None
