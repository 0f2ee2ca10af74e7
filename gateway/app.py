"""The Starlette application: route table and OpenAPI built at start-up, gRPC channels and caches
owned by the lifespan, and one endpoint that authenticates, resolves the account and forwards.
"""

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from canopy.tenancy.v1 import tenancy_pb2_grpc
from gateway.accounts import AccountResolver, Membership
from gateway.auth import Authenticator, JwksCache, Principal
from gateway.config import GatewayConfig
from gateway.openapi import openapi_document
from gateway.problems import Problem, from_rpc_error, internal
from gateway.routes import Match, Route, RouteTable, build_routes
from gateway.transcoding import json_of, request_of
from services.runtime.clients import ServiceChannels
from services.runtime.context import CORRELATION_KEY, CallContext, ContextTokens
from services.runtime.ids import new_id
from services.runtime.logs import correlation_id

log = logging.getLogger(__name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
OWN_PATHS = {"/healthz", "/openapi.json"}
_CORRELATION = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
JSON_MEDIA_TYPES = ("application/json",)


class Gateway:
    """What serves one HTTP call: peers' stubs, the token signer, authentication and accounts."""

    def __init__(
        self, *, config: GatewayConfig, routes: RouteTable, channels: ServiceChannels
    ) -> None:
        self.config = config
        self.routes = routes
        self.channels = channels
        self.tokens = ContextTokens(config.context_key)
        self._stubs: dict[type[Any], Any] = {}
        identity = identity_pb2_grpc.IdentityServiceStub(channels.channel("identity"))
        tenancy = tenancy_pb2_grpc.TenancyServiceStub(channels.channel("tenancy"))
        jwks_timeout = min(config.upstream_timeout_seconds, 5.0)

        async def fetch_jwks() -> identity_pb2.Jwks:
            metadata = ((CORRELATION_KEY, correlation_id.get()),)
            return await identity.GetJwks(
                identity_pb2.GetJwksRequest(), metadata=metadata, timeout=jwks_timeout
            )

        self.authenticator = Authenticator(
            JwksCache(
                fetch_jwks,
                ttl=config.jwks_ttl_seconds,
                refetch_floor=config.jwks_refetch_floor_seconds,
            )
        )
        self.accounts = AccountResolver(
            identity=identity,
            tenancy=tenancy,
            tokens=self.tokens,
            account_ttl=config.account_cache_ttl_seconds,
            resolution_ttl=config.resolution_cache_ttl_seconds,
            timeout=config.upstream_timeout_seconds,
        )

    def stub_method(self, route: Route) -> Any:
        stub = self._stubs.get(route.stub_class)
        if stub is None:
            stub = self._stubs[route.stub_class] = route.stub_class(
                self.channels.channel(route.context)
            )
        return getattr(stub, route.method.name)

    async def handle(self, request: Request) -> Response:
        found = self.routes.match(request.method, request.url.path)
        if not isinstance(found, Match):
            raise no_route(request, found)
        route = found.route
        cid = request.state.correlation_id
        if route.public:
            message = request_of(
                route,
                path_params=found.path_params,
                query=request.query_params.multi_items(),
                body=await read_body(request, route, self.config.max_body_bytes),
            )
            return await self.forward(route, message, metadata=((CORRELATION_KEY, cid),))
        principal = await self.authenticator.authenticate(request.headers.get("authorization"))
        membership = await self.accounts.membership(
            principal_id=principal.id,
            account_hint=request.headers.get("x-account"),
            correlation_id=cid,
        )
        membership = membership.narrowed_to(request.headers.get("x-tenant"))
        if route.permission not in membership.permissions:
            raise Problem(
                403,
                "permission-denied",
                "Permission denied",
                f"permission {route.permission} is required",
            )
        message = request_of(
            route,
            path_params=found.path_params,
            query=request.query_params.multi_items(),
            body=await read_body(request, route, self.config.max_body_bytes),
        )
        ctx = call_context(principal, membership, correlation=cid, request=request)
        return await self.forward(route, message, metadata=self.tokens.metadata(ctx))

    async def forward(
        self, route: Route, message: Any, *, metadata: tuple[tuple[str, str], ...]
    ) -> Response:
        try:
            response = await self.stub_method(route)(
                message, metadata=metadata, timeout=self.config.upstream_timeout_seconds
            )
        except grpc.RpcError as error:
            problem = from_rpc_error(error, service=route.context)
            if problem.status >= 500:
                log.warning(
                    "upstream call failed",
                    extra={
                        "fields": {
                            "rpc": route.full_method,
                            "code": problem.grpc_status.name,
                            "details": error.details() if hasattr(error, "details") else "",
                        }
                    },
                )
            raise problem from error
        return JSONResponse(json_of(response))


def call_context(
    principal: Principal, membership: Membership, *, correlation: str, request: Request
) -> CallContext:
    """What the service will know of this call; built only from verified facts."""
    return CallContext(
        principal_id=principal.id,
        principal_kind=principal.kind,
        account_id=membership.account_id,
        permissions=membership.permissions,
        tenant_ids=membership.tenant_ids,
        correlation_id=correlation,
        source_address=request.client.host if request.client else "",
    )


def no_route(request: Request, allowed: list[str]) -> Problem:
    path = request.url.path
    if not allowed and path in OWN_PATHS:
        allowed = ["GET"]
    if allowed:
        return Problem(
            405,
            "method-not-allowed",
            "Method not allowed",
            f"{request.method} is not allowed on {path}; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    return Problem(404, "not-found", "Not found", f"no route for {request.method} {path}")


async def read_body(request: Request, route: Route, limit: int) -> bytes:
    """The request body (at most `limit` bytes); routes without a body ignore it."""
    if not route.body:
        return b""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send the body as application/json (Content-Type header), not {media_type}",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> Problem:
    return Problem(413, "payload-too-large", "Payload too large", f"the body exceeds {limit} bytes")


class RequestIds:
    """ASGI middleware: correlation and request ids on every response, an access log line per
    request, and a problem (never a traceback) when something fails unexpectedly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-correlation-id", "")
        cid = given if _CORRELATION.match(given) else str(new_id())
        rid = str(new_id())
        state = scope.setdefault("state", {})
        state["correlation_id"], state["request_id"] = cid, rid
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Correlation-Id"] = cid
                headers["X-Request-Id"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except Exception:
            log.exception("unhandled error", extra={"fields": {"path": scope.get("path")}})
            if response_started:
                raise
            await internal().response()(scope, receive, send_with_ids)
        finally:
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "request_id": rid,
                        "client": (scope.get("client") or ("",))[0],
                    }
                },
            )
            correlation_id.reset(token)


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway application; the route table and OpenAPI document are built here, from the
    protos, so a broken contract fails at start-up."""
    routes = build_routes()
    document = openapi_document(routes)
    ContextTokens(config.context_key)  # fail at start-up, not on the first call, without a key

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channels = ServiceChannels(config)
        app.state.gateway = Gateway(config=config, routes=routes, channels=channels)
        try:
            yield
        finally:
            await channels.close()

    async def dispatch(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        try:
            return await gateway.handle(request)
        except Problem as problem:
            return problem.response()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def http_problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code in (404, 405):
            found = routes.match(request.method, request.url.path)
            return no_route(request, [] if isinstance(found, Match) else found).response()
        title = error.detail or "Error"
        return Problem(error.status_code, "http-error", title, title).response()

    async def problem_raised(request: Request, error: Exception) -> Response:
        assert isinstance(error, Problem)
        return error.response()

    return Starlette(
        routes=[
            HttpRoute("/healthz", healthz, methods=["GET"]),
            HttpRoute("/openapi.json", openapi, methods=["GET"]),
            HttpRoute("/{path:path}", dispatch, methods=METHODS),
        ],
        middleware=[Middleware(RequestIds)],
        exception_handlers={HTTPException: http_problem, Problem: problem_raised},
        lifespan=lifespan,
    )
