"""The Starlette application: route table and OpenAPI built at start-up, gRPC channels and caches
owned by the lifespan, and one endpoint that authenticates, resolves the account and forwards.
"""

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from canopy.tenancy.v1 import tenancy_pb2_grpc
from gateway.accounts import PRINCIPALS_RESOLVE, AccountResolver, Membership, subdomain_of
from gateway.auth import Authenticator, JwksCache, Principal, credential_of
from gateway.authz import ApiKeys, AuthzVersions, version_reader
from gateway.config import GatewayConfig
from gateway.docs import CONTENT_SECURITY_POLICY, docs_page
from gateway.leases import AuthzLease
from gateway.openapi import openapi_document
from gateway.problems import Problem, forbidden, from_rpc_error, internal
from gateway.ratelimit import RateLimits, TokenBuckets
from gateway.routes import Match, Route, RouteTable, build_routes
from gateway.transcoding import json_of, request_of
from services.runtime.clients import ServiceChannels
from services.runtime.context import (
    CORRELATION_KEY,
    CallContext,
    ContextTokens,
    service_context,
)
from services.runtime.ids import new_id
from services.runtime.logs import correlation_id

log = logging.getLogger(__name__)

LEASE_CLOSE_SECONDS = 3.0
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
OWN_PATHS = {"/healthz", "/openapi.json", "/docs"}
_CORRELATION = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
JSON_MEDIA_TYPES = ("application/json",)
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Account",
    "X-Tenant",
    "X-Correlation-Id",
]
CORS_RESPONSE_HEADERS = ["X-Correlation-Id", "X-Request-Id", "Retry-After"]


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

        def resolver_metadata(account_id: str) -> tuple[tuple[str, str], ...]:
            ctx = service_context(
                "gateway",
                account_id=uuid.UUID(account_id) if account_id else None,
                permissions=[PRINCIPALS_RESOLVE],
                correlation_id=correlation_id.get(),
            )
            return self.tokens.metadata(ctx)

        async def renew_lease(
            request: identity_pb2.RenewAuthzLeaseRequest,
        ) -> identity_pb2.AuthzLease:
            return await identity.RenewAuthzLease(
                request, metadata=resolver_metadata(""), timeout=jwks_timeout
            )

        async def release_lease(lease_id: str) -> None:
            await identity.ReleaseAuthzLease(
                identity_pb2.ReleaseAuthzLeaseRequest(lease_id=lease_id),
                metadata=resolver_metadata(""),
                timeout=jwks_timeout,
            )

        self.lease = (
            AuthzLease(
                nats_url=config.nats_url,
                renew=renew_lease,
                release=release_lease,
                on_fence=lambda fence: self.versions.fence(
                    fence.account_id, fence.fence_id, fence.version, withdrawn=fence.withdrawn
                ),
            )
            if config.authz_leases
            else None
        )
        self.versions = AuthzVersions(
            version_reader(identity, resolver_metadata, config.upstream_timeout_seconds),
            self.lease,
        )

        async def authenticate_key(key: str) -> identity_pb2.ApiKeyPrincipal:
            return await identity.AuthenticateApiKey(
                identity_pb2.AuthenticateApiKeyRequest(key=key),
                metadata=resolver_metadata(""),
                timeout=config.upstream_timeout_seconds,
            )

        self.api_keys = ApiKeys(
            authenticate=authenticate_key,
            versions=self.versions,
            ttl=config.api_key_cache_ttl_seconds,
        )
        self.accounts = AccountResolver(
            identity=identity,
            tenancy=tenancy,
            tokens=self.tokens,
            versions=self.versions,
            account_ttl=config.account_cache_ttl_seconds,
            resolution_ttl=config.resolution_cache_ttl_seconds,
            timeout=config.upstream_timeout_seconds,
        )
        self.limits = RateLimits(
            accounts=TokenBuckets(
                rate=config.rate_limit_account_per_second, burst=config.rate_limit_account_burst
            ),
            api_keys=TokenBuckets(
                rate=config.rate_limit_api_key_per_second, burst=config.rate_limit_api_key_burst
            ),
        )
        self.reserved_subdomains = config.reserved_subdomain_set

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
            message = await self.message(request, found)
            return await self.forward(route, message, metadata=((CORRELATION_KEY, cid),))
        principal, version = await self.principal(request)
        if route.authenticated:
            if principal.via == "api_key":
                # A key limited to some permissions must not reach calls about its owner (e.g.
                # minting an unlimited key): those take the owner's own sign-in.
                raise forbidden(
                    "API keys cannot call this endpoint; sign in as the user",
                    kind="api-key-not-allowed",
                )
            # About the caller itself: its own identity and the account its credential names.
            ctx = CallContext(
                principal_id=principal.id,
                principal_kind=principal.kind,
                account_id=uuid.UUID(principal.account_id) if principal.account_id else None,
                permissions=frozenset(),
                tenant_ids=frozenset(),
                correlation_id=cid,
                source_address=request.client.host if request.client else "",
            )
            message = await self.message(request, found)
            return await self.forward(route, message, metadata=self.tokens.metadata(ctx))
        membership = await self.accounts.membership(
            principal=principal,
            account_hint=request.headers.get("x-account"),
            subdomain=subdomain_of(
                request.headers.get("host"), self.config.base_domain, self.reserved_subdomains
            ),
            correlation_id=cid,
            version=version,
        )
        self.limits.check(
            account_id=str(membership.account_id),
            api_key_id=principal.credential_id if principal.via == "api_key" else None,
        )
        tenant_header = request.headers.get("x-tenant")
        if tenant_header:
            every_tenant = membership.tenant_ids is None
            membership = membership.narrowed_to(tenant_header)
            if every_tenant:
                await self.accounts.check_tenant(membership, cid)
        membership = membership.for_permission(route.permission)
        if route.permission not in membership.permissions:
            raise Problem(
                403,
                "permission-denied",
                "Permission denied",
                f"permission {route.permission} is required",
            )
        message = await self.message(request, found)
        ctx = call_context(principal, membership, correlation=cid, request=request)
        return await self.forward(route, message, metadata=self.tokens.metadata(ctx))

    async def principal(self, request: Request) -> tuple[Principal, int | None]:
        """Who calls; for an API key also its account's authz_version, just read."""
        credential = credential_of(
            request.headers.get("authorization"), request.headers.get("x-api-key")
        )
        if credential.kind == "api_key":
            return await self.api_keys.principal(credential.secret)
        return await self.authenticator.authenticate(f"Bearer {credential.secret}"), None

    async def message(self, request: Request, found: Match) -> Any:
        return request_of(
            found.route,
            path_params=found.path_params,
            query=request.query_params.multi_items(),
            body=await read_body(request, found.route, self.config.max_body_bytes),
        )

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
        return ApiJSONResponse(json_of(response))


class ApiJSONResponse(JSONResponse):
    """JSONResponse rendered by orjson (several times faster for list responses)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


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


def middleware(config: GatewayConfig) -> list[Middleware]:
    """Request ids outermost (every answer carries them); CORS only for configured origins."""
    stack = [Middleware(RequestIds)]
    origins = config.cors_origins
    if origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=METHODS,
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_RESPONSE_HEADERS,
                max_age=600,
            )
        )
    return stack


def create_app(config: GatewayConfig) -> Starlette:
    """The gateway application; the route table and OpenAPI document are built here, from the
    protos, so a broken contract fails at start-up."""
    routes = build_routes()
    document = openapi_document(routes)
    page = docs_page(document)
    ContextTokens(config.context_key)  # fail at start-up, not on the first call, without a key

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channels = ServiceChannels(config)
        gateway = app.state.gateway = Gateway(config=config, routes=routes, channels=channels)
        lease = asyncio.create_task(gateway.lease.run()) if gateway.lease else None
        try:
            yield
        finally:
            if lease is not None:
                lease.cancel()
                # Bounded: nats-py can swallow a cancel while it is still connecting.
                await asyncio.wait({lease}, timeout=LEASE_CLOSE_SECONDS)
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

    async def docs(request: Request) -> Response:
        return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

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
            HttpRoute("/docs", docs, methods=["GET"]),
            HttpRoute("/{path:path}", dispatch, methods=METHODS),
        ],
        middleware=middleware(config),
        exception_handlers={HTTPException: http_problem, Problem: problem_raised},
        lifespan=lifespan,
    )
