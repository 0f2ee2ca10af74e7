"""Small helpers shared by identity's integration tests."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from nats.aio.client import Client as NatsClient

from canopy.common.v1 import events_pb2
from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from services.identity.adapters.catalogue import permission_catalogue
from services.identity.domain.roles import preset_roles
from services.runtime.context import ContextTokens
from tests.support import caller

PRESET_ROLES = preset_roles(permission_catalogue())

PASSWORD = "correct horse battery"
ADMIN = (
    "identity.users:write",
    "identity.users:read",
    "identity.roles:read",
    "identity.roles:write",
    "identity.grants:read",
    "identity.grants:write",
    "identity.service_accounts:read",
    "identity.service_accounts:write",
    "identity.domains:read",
    "identity.domains:write",
)
RESOLVER = ("identity.principals:resolve",)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@Example.COM"


def metadata(tokens: ContextTokens, account_id: uuid.UUID | None, *permissions: str):
    return tokens.metadata(caller(account_id, permissions or ADMIN))


def service_metadata(tokens: ContextTokens):
    return tokens.metadata(caller(None, RESOLVER, principal_id="service:gateway", kind="service"))


def user_metadata(tokens: ContextTokens, account_id: uuid.UUID | None, user_id: str):
    """A signed-in user's call (as the gateway forwards one to an authenticated RPC)."""
    return tokens.metadata(caller(account_id, (), principal_id=user_id, kind="user"))


async def resolve(stub, tokens: ContextTokens, principal_id: str, account_id: str = ""):  # type: ignore[no-untyped-def]
    return await stub.Resolve(
        identity_pb2.ResolveRequest(principal_id=principal_id, account_id=account_id),
        metadata=service_metadata(tokens),
    )


async def grant(  # type: ignore[no-untyped-def]
    stub,
    tokens: ContextTokens,
    account_id: uuid.UUID,
    user_id: str,
    role: str,
    scope_type: str = "",
    scope_id: str = "",
):
    request = identity_pb2.GrantRoleRequest(
        user_id=user_id, role=role, scope_type=scope_type, scope_id=scope_id
    )
    return await stub.GrantRole(request, metadata=metadata(tokens, account_id))


async def sign_in(stub, email: str, password: str = PASSWORD, account: str = ""):  # type: ignore[no-untyped-def]
    return await stub.IssueToken(
        identity_pb2.IssueTokenRequest(email=email, password=password, account=account)
    )


async def create_user(
    stub: identity_pb2_grpc.IdentityServiceStub,
    tokens: ContextTokens,
    account_id: uuid.UUID,
    *,
    email: str | None = None,
    password: str = PASSWORD,
    role: str = "",
) -> identity_pb2.User:
    request = identity_pb2.CreateUserRequest(
        email=email or unique_email(), password=password, display_name="Test User", role=role
    )
    return await stub.CreateUser(request, metadata=metadata(tokens, account_id))


async def rpc_error(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


@asynccontextmanager
async def published(nats_client: NatsClient, subject: str) -> AsyncIterator[list[events_pb2.Event]]:
    """Collect the events published on `subject` while the block runs (and shortly after)."""
    seen: list[events_pb2.Event] = []

    async def keep(message) -> None:  # type: ignore[no-untyped-def]
        seen.append(events_pb2.Event.FromString(message.data))

    subscription = await nats_client.subscribe(subject, cb=keep)
    try:
        yield seen
    finally:
        await subscription.unsubscribe()


async def eventually(check: Callable[[], object], *, within: float = 10.0) -> None:
    """Wait until `check()` (sync or async) is truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
