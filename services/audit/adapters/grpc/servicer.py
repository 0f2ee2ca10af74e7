"""AuditService over gRPC: requests to use cases, results to messages, nothing else."""

import grpc

from canopy.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.adapters.grpc.translate import event_message, verification_message
from services.audit.service_layer.trail import AuditTrail
from services.runtime.grpc_server import context_of_call


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail

    async def ListEvents(
        self, request: audit_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.ListEventsResponse:
        page = await self.trail.list_events(
            ctx=context_of_call(),
            page_size=request.page_size,
            page_token=request.page_token,
            event_type=request.type,
        )
        return audit_pb2.ListEventsResponse(
            events=[event_message(event) for event in page.events],
            next_page_token=page.next_page_token,
        )

    async def VerifyChain(
        self, request: audit_pb2.VerifyChainRequest, context: grpc.aio.ServicerContext
    ) -> audit_pb2.VerifyChainResponse:
        result = await self.trail.verify_chain(ctx=context_of_call())
        return verification_message(result)
