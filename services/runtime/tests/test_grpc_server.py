"""The interceptor: no token, a forged or expired token, or a missing permission never gets in."""

import uuid

import grpc
import pytest

from canopy.audit.v1 import audit_pb2, audit_pb2_grpc
from services.runtime.context import CallContext, ContextTokens, generate_context_key
from services.runtime.errors import NotFound
from services.runtime.grpc_server import context_of_call
from services.runtime.host import ServiceApp
from tests.support import caller, serving


class RecordingAudit(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self) -> None:
        self.seen: list[CallContext] = []

    async def ListEvents(self, request, context):  # noqa: N802 (generated name)
        self.seen.append(context_of_call())
        return audit_pb2.ListEventsResponse()

    async def VerifyChain(self, request, context):  # noqa: N802
        raise NotFound("no such chain")


@pytest.fixture
def key() -> str:
    return generate_context_key()


async def call(channel: grpc.aio.Channel, metadata=()) -> audit_pb2.ListEventsResponse:
    stub = audit_pb2_grpc.AuditServiceStub(channel)
    return await stub.ListEvents(audit_pb2.ListEventsRequest(), metadata=metadata)


def app(servicer: RecordingAudit) -> ServiceApp:
    return ServiceApp(
        pb2_modules=[audit_pb2],
        registrations=[(audit_pb2_grpc.add_AuditServiceServicer_to_server, servicer)],
    )


async def test_verified_caller_reaches_the_servicer(key: str) -> None:
    tokens, servicer = ContextTokens(key), RecordingAudit()
    ctx = caller(uuid.uuid4(), ["audit.events:read"])
    async with serving(app(servicer), tokens) as channel:
        await call(channel, tokens.metadata(ctx))
    assert servicer.seen == [ctx]


@pytest.mark.parametrize("problem", ["none", "forged", "expired", "garbage"])
async def test_bad_tokens_are_unauthenticated(key: str, problem: str) -> None:
    tokens, servicer = ContextTokens(key), RecordingAudit()
    ctx = caller(uuid.uuid4(), ["audit.events:read"])
    metadata = {
        "none": (),
        "forged": ContextTokens(generate_context_key()).metadata(ctx),
        "expired": (("x-canopy-context", tokens.sign(ctx, lifetime=-5)),),
        "garbage": (("x-canopy-context", "not-a-token"),),
    }[problem]
    async with serving(app(servicer), tokens) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(channel, metadata)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert servicer.seen == []


async def test_missing_permission_is_denied(key: str) -> None:
    tokens, servicer = ContextTokens(key), RecordingAudit()
    ctx = caller(uuid.uuid4(), ["audit.events:verify"])
    async with serving(app(servicer), tokens) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call(channel, tokens.metadata(ctx))
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert servicer.seen == []


async def test_domain_errors_map_to_status(key: str) -> None:
    tokens = ContextTokens(key)
    ctx = caller(uuid.uuid4(), ["audit.events:verify"])
    async with serving(app(RecordingAudit()), tokens) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.VerifyChain(audit_pb2.VerifyChainRequest(), metadata=tokens.metadata(ctx))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "no such chain"


async def test_calls_are_counted_by_status_in_metrics(key: str) -> None:
    from prometheus_client import REGISTRY

    method = "/canopy.audit.v1.AuditService/ListEvents"

    def count(code: str) -> float:
        labels = {"method": method, "code": code}
        return REGISTRY.get_sample_value("canopy_grpc_requests_total", labels) or 0.0

    tokens = ContextTokens(key)
    ok_before, denied_before = count("OK"), count("PERMISSION_DENIED")
    async with serving(app(RecordingAudit()), tokens) as channel:
        await call(channel, tokens.metadata(caller(uuid.uuid4(), ["audit.events:read"])))
        with pytest.raises(grpc.aio.AioRpcError):
            await call(channel, tokens.metadata(caller(uuid.uuid4(), [])))
    assert count("OK") == ok_before + 1
    assert count("PERMISSION_DENIED") == denied_before + 1
