"""The gRPC server of every service: context tokens, permission checks, health, reflection."""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime import errors
from services.runtime.context import (
    CORRELATION_KEY,
    METADATA_KEY,
    CallContext,
    ContextTokens,
    current_context,
)
from services.runtime.logs import correlation_id
from services.runtime.metrics import RPC_SECONDS, RPCS
from services.runtime.permissions import MethodRule, method_rules, services_of

log = logging.getLogger(__name__)

STATUS_OF_ERROR: dict[type[errors.CanopyError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def status_of(error: errors.CanopyError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[kind]
    return grpc.StatusCode.UNKNOWN


def context_of_call() -> CallContext:
    """The verified caller of the RPC being served (never None inside a non-public RPC)."""
    ctx = current_context.get()
    if ctx is None:
        raise errors.Unauthenticated("no caller context")
    return ctx


@contextmanager
def measured(method: str, context: grpc.aio.ServicerContext) -> Iterator[None]:
    """Count the call by its final status code and time it."""
    started = time.perf_counter()
    try:
        yield
    finally:
        code = context.code() or grpc.StatusCode.OK
        RPCS.labels(method, code.name if isinstance(code, grpc.StatusCode) else str(code)).inc()
        RPC_SECONDS.labels(method).observe(time.perf_counter() - started)


class ContextInterceptor(grpc.aio.ServerInterceptor):
    """Verifies the context token, checks the RPC's declared permission, maps errors."""

    def __init__(self, tokens: ContextTokens, rules: dict[str, MethodRule]) -> None:
        self.tokens = tokens
        self.rules = rules

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        rule = self.rules.get(details.method)  # type: ignore[attr-defined]
        if handler is None or rule is None:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(rule, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(rule, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise NotImplementedError(f"{details.method}: only unary and server-streaming RPCs")

    def _admit(self, rule: MethodRule, context: grpc.aio.ServicerContext) -> CallContext | None:
        metadata = dict(context.invocation_metadata() or ())
        correlation = str(metadata.get(CORRELATION_KEY, ""))
        correlation_id.set(correlation)
        if rule.public:
            return None
        token = metadata.get(METADATA_KEY)
        if not token:
            raise errors.Unauthenticated("no context token")
        ctx = self.tokens.verify(str(token), correlation)
        if not rule.authenticated:
            ctx.require(rule.permission)
        correlation_id.set(ctx.correlation_id)
        return ctx

    def _unary(self, rule: MethodRule, behavior: Any) -> Any:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with measured(rule.full_method, context):
                try:
                    token = current_context.set(self._admit(rule, context))
                    try:
                        return await behavior(request, context)
                    finally:
                        current_context.reset(token)
                except errors.CanopyError as error:
                    await context.abort(status_of(error), str(error))

        return guarded

    def _stream(self, rule: MethodRule, behavior: Any) -> Any:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with measured(rule.full_method, context):
                try:
                    token = current_context.set(self._admit(rule, context))
                    try:
                        async for response in behavior(request, context):
                            yield response
                    finally:
                        current_context.reset(token)
                except errors.CanopyError as error:
                    await context.abort(status_of(error), str(error))

        return guarded


Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any]


async def start_grpc_server(
    *,
    address: str,
    tokens: ContextTokens,
    pb2_modules: list[ModuleType],
    registrations: list[Registration],
) -> grpc.aio.Server:
    """Start a server with our interceptor, the standard health service and reflection."""
    server = grpc.aio.server(
        interceptors=[ContextInterceptor(tokens, method_rules(*pb2_modules))],
        options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)],
    )
    for add_to_server, servicer in registrations:
        add_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [svc.full_name for svc in services_of(*pb2_modules)]
    for name in [*names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    server.add_insecure_port(address)
    await server.start()
    log.info("gRPC serving", extra={"fields": {"address": address, "services": names}})
    return server
