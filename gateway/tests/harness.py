"""The gateway under test and its callers: the app served in-process against gRPC doubles."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from canopy.tenancy.v1 import tenancy_pb2
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.tests.doubles import Grant, Peers, SigningKey, serving_peers
from services.runtime.context import ContextTokens, generate_context_key

PROBLEM = "application/problem+json"
TENANTS_READ = "tenancy.tenants:read"
TENANTS_WRITE = "tenancy.tenants:write"


@dataclass
class Setup:
    peers: Peers
    key: SigningKey
    tokens: ContextTokens
    client: httpx.AsyncClient
    config: GatewayConfig


@asynccontextmanager
async def serving_setup() -> AsyncIterator[Setup]:
    context_key = generate_context_key()
    tokens = ContextTokens(context_key)
    key = SigningKey(kid="key-1")
    async with serving_peers(tokens, key) as peers:
        config = GatewayConfig(
            context_key=context_key,
            identity_address=peers.addresses["identity"],
            tenancy_address=peers.addresses["tenancy"],
            audit_address=peers.addresses["audit"],
            jwks_refetch_floor_seconds=0.0,
            authz_leases=False,  # the doubles read versions per request (see test_leases)
        )
        app = create_app(config)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
        ):
            yield Setup(peers, key, tokens, client, config)


@dataclass
class Member:
    user_id: str
    account: tenancy_pb2.Account
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Account": self.account.slug, **extra}


def new_member(
    setup: Setup,
    permissions: set[str] | None = None,
    *,
    status: int = tenancy_pb2.ACCOUNT_STATUS_ACTIVE,
    tenant_ids: set[str] | None = None,
) -> Member:
    user_id = str(uuid.uuid4())
    account = setup.peers.tenancy.add_account(f"acct-{uuid.uuid4().hex[:12]}", status)
    grant = Grant(
        frozenset(permissions if permissions is not None else {TENANTS_READ, TENANTS_WRITE}),
        None if tenant_ids is None else frozenset(tenant_ids),
    )
    setup.peers.identity.add_member(user_id, account.id, grant)
    return Member(user_id, account, setup.key.token(user_id))


def assert_problem(response: httpx.Response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "grpc_status"}
    assert body["status"] == status
    if kind is not None:
        assert body["type"].endswith("/" + kind), body
    return body
