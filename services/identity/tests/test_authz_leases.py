"""Leases on caching authz versions: holders hear of every change before it commits, or their
lease is broken and outlasted; a new lease waits for changes being fenced."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import grpc
import pytest
from nats.aio.client import Client as NatsClient
from sqlalchemy import MetaData

from canopy.identity.v1 import identity_pb2
from services.identity.adapters.db.tables import identity_tables
from services.identity.adapters.events.fences import NatsFences
from services.identity.bootstrap import SCHEMA
from services.identity.config import IdentityConfig
from services.identity.service_layer.unit_of_work import IdentityStore
from services.identity.tests.helpers import (
    create_user,
    grant,
    metadata,
    rpc_error,
    service_metadata,
)
from services.runtime.context import ContextTokens
from services.runtime.db import Database, Scope
from services.runtime.outbox import Outbox

OnFence = Callable[[identity_pb2.AuthzFence], Awaitable[None]]


async def version(stub, tokens: ContextTokens, account: uuid.UUID) -> int:  # type: ignore[no-untyped-def]
    answer = await stub.GetAuthzVersion(
        identity_pb2.GetAuthzVersionRequest(account_id=str(account)),
        metadata=service_metadata(tokens),
    )
    return int(answer.version)


async def renew(stub, tokens: ContextTokens, lease_id: str, subject: str = "", acquire=False):  # type: ignore[no-untyped-def]
    return await stub.RenewAuthzLease(
        identity_pb2.RenewAuthzLeaseRequest(
            lease_id=lease_id, fence_subject=subject, acquire=acquire
        ),
        metadata=service_metadata(tokens),
    )


async def release(stub, tokens: ContextTokens, lease_id: str) -> None:  # type: ignore[no-untyped-def]
    await stub.ReleaseAuthzLease(
        identity_pb2.ReleaseAuthzLeaseRequest(lease_id=lease_id),
        metadata=service_metadata(tokens),
    )


@asynccontextmanager
async def holder(
    stub,  # type: ignore[no-untyped-def]
    tokens: ContextTokens,
    nats_client: NatsClient,
    on_fence: OnFence | None = None,
    *,
    listening: bool = True,
) -> AsyncIterator[tuple[str, list[identity_pb2.AuthzFence]]]:
    """A lease holder answering fences on its own subject (or, not listening, never)."""
    heard: list[identity_pb2.AuthzFence] = []

    async def answer(message) -> None:  # type: ignore[no-untyped-def]
        fence = identity_pb2.AuthzFence.FromString(message.data)
        heard.append(fence)
        if on_fence is not None:
            await on_fence(fence)
        await message.respond(b"")

    subject = nats_client.new_inbox()
    subscription = await nats_client.subscribe(subject, cb=answer) if listening else None
    lease_id = str(uuid.uuid4())
    await renew(stub, tokens, lease_id, subject, acquire=True)
    try:
        yield lease_id, heard
    finally:
        await release(stub, tokens, lease_id)  # a lease left behind would slow other tests
        if subscription is not None:
            await subscription.unsubscribe()


async def test_a_holder_hears_of_a_change_before_it_commits(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    before = await version(stub, tokens, account)
    seen_while_fenced: list[int] = []

    async def check(fence: identity_pb2.AuthzFence) -> None:
        seen_while_fenced.append(await version(stub, tokens, account))

    async with holder(stub, tokens, nats_client, check) as (_, heard):
        await grant(stub, tokens, account, user.id, "auditor")
    after = await version(stub, tokens, account)
    assert after == before + 1
    assert [(f.account_id, f.version, f.withdrawn) for f in heard] == [(str(account), after, False)]
    assert seen_while_fenced == [before]  # not yet committed while the holder was told


async def test_a_silent_holder_is_outlasted_and_loses_its_lease(
    stub, tokens: ContextTokens, nats_client: NatsClient, identity_config: IdentityConfig
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    taken = time.monotonic()
    async with holder(stub, tokens, nats_client, listening=False) as (lease_id, _):
        await grant(stub, tokens, account, user.id, "auditor")
        # The change could commit only once the holder's lease had run out.
        assert time.monotonic() - taken >= identity_config.authz_lease_seconds * 0.95
        lost = await rpc_error(renew(stub, tokens, lease_id))
    assert lost.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "take a new one" in (lost.details() or "")


async def test_a_new_lease_waits_for_a_change_being_fenced(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    before = await version(stub, tokens, account)
    told = asyncio.Event()

    async def slowly(fence: identity_pb2.AuthzFence) -> None:
        told.set()
        await asyncio.sleep(0.5)

    async with holder(stub, tokens, nats_client, slowly):
        change = asyncio.ensure_future(grant(stub, tokens, account, user.id, "auditor"))
        await told.wait()
        # Taken while the change is being fenced: its first read must already see the change.
        async with holder(stub, tokens, nats_client) as (_, heard_by_newcomer):
            assert await version(stub, tokens, account) == before + 1
        await change
    assert heard_by_newcomer == []


async def test_a_rolled_back_change_is_withdrawn(
    tokens: ContextTokens, stub, nats_client: NatsClient, identity_config: IdentityConfig
) -> None:
    db = Database(identity_config.app_url(SCHEMA), pool_size=1)
    tables = identity_tables(MetaData(schema=SCHEMA))
    store = IdentityStore(db, tables, Outbox(tables.outbox), NatsFences(nats_client, ack_timeout=1))
    account = uuid.uuid4()
    try:
        async with holder(stub, tokens, nats_client) as (_, heard):
            with pytest.raises(RuntimeError):
                async with store.transaction(Scope.account(account)) as uow:
                    await uow.changed_authorization(account)
                    raise RuntimeError("the rest of the change failed")
    finally:
        await db.dispose()
    assert [(f.version, f.withdrawn) for f in heard] == [(1, False), (1, True)]
    assert heard[0].fence_id == heard[1].fence_id
    assert await version(stub, tokens, account) == 0


async def test_a_lease_is_taken_only_with_a_subject_and_extended_only_while_known(
    stub, tokens: ContextTokens
) -> None:
    unknown = await rpc_error(renew(stub, tokens, str(uuid.uuid4())))
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
    no_subject = await rpc_error(renew(stub, tokens, str(uuid.uuid4()), " ", acquire=True))
    assert no_subject.code() == grpc.StatusCode.INVALID_ARGUMENT
    malformed = await rpc_error(renew(stub, tokens, "lease-1", "_INBOX.x", acquire=True))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_leases_are_for_services_only(stub, tokens: ContextTokens) -> None:
    error = await rpc_error(
        stub.RenewAuthzLease(
            identity_pb2.RenewAuthzLeaseRequest(
                lease_id=str(uuid.uuid4()), fence_subject="_INBOX.x", acquire=True
            ),
            metadata=metadata(tokens, uuid.uuid4()),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
