"""Integration tests: real envelopes on JetStream, the audit service on PostgreSQL, over gRPC."""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
import nats
import psycopg
import pytest
from google.protobuf import any_pb2, json_format, struct_pb2
from google.protobuf.message import Message
from nats.js import JetStreamContext
from sqlalchemy import text

from canopy.audit.v1 import audit_pb2, audit_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.identity.v1 import identity_pb2
from canopy.ingestion.v1 import ingestion_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.audit.adapters.db.repository import SqlAuditLog
from services.audit.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.audit.config import AuditConfig
from services.audit.domain.chain import GENESIS_HASH, PLATFORM_ACCOUNT_ID, EventRecord
from services.audit.service_layer.trail import AuditTrail
from services.runtime.config import RuntimeConfig, libpq_url
from services.runtime.context import CallContext, ContextTokens
from services.runtime.db import Database, Scope
from services.runtime.events import new_event
from services.runtime.migrations import migrate
from tests.support import caller, serving

READ, VERIFY = "audit.events:read", "audit.events:verify"
AUDITOR = [READ, VERIFY]
WAIT_SECONDS = 15
Stub = audit_pb2_grpc.AuditServiceStub


@pytest.fixture(scope="module")
def config(runtime_config: RuntimeConfig) -> AuditConfig:
    # A small verification batch so chains of a few events already span several batches.
    config = AuditConfig(**runtime_config.model_dump(), grpc_port=0, audit_verify_batch_size=2)
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    return config


@pytest.fixture(scope="module")
async def stub(config: AuditConfig, tokens: ContextTokens) -> AsyncIterator[Stub]:
    async with bootstrap(config) as app, serving(app, tokens) as channel:
        yield audit_pb2_grpc.AuditServiceStub(channel)


@pytest.fixture(scope="module")
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    client = await nats.connect(nats_url)
    yield client.jetstream()
    await client.close()


@pytest.fixture
async def superuser(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database_url), autocommit=True
    ) as connection:
        yield connection


def actor(account_id: uuid.UUID | None) -> CallContext:
    return dataclasses.replace(
        caller(account_id, [], principal_id=f"user-{uuid.uuid4().hex[:8]}"),
        source_address="203.0.113.7",
    )


async def publish(
    js: JetStreamContext, event: events_pb2.Event, *, subject: str = "", msg_id: str = ""
) -> None:
    await js.publish(
        subject or event.type,
        event.SerializeToString(),
        headers={"Nats-Msg-Id": msg_id or event.id},
    )


def account_created(account_id: uuid.UUID, ctx: CallContext | None = None) -> events_pb2.Event:
    slug = f"acme-{uuid.uuid4().hex[:8]}"
    payload = tenancy_pb2.AccountCreated(
        account_id=str(account_id), name="Acme Motors", slug=slug, tier="standard"
    )
    return new_event("canopy.tenancy.account.created", payload, account_id=account_id, ctx=ctx)


def file_received(
    account_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None, name: str = "customers.csv"
) -> events_pb2.Event:
    payload = ingestion_pb2.FileReceived(
        file_id=str(uuid.uuid4()),
        dropzone_id=str(uuid.uuid4()),
        name=name,
        size_bytes=2048,
        sha256="ab" * 32,
        source_schema="dms-customers",
        tenant_ids=[str(tenant_id)] if tenant_id else [],
    )
    return new_event(
        "canopy.ingestion.file.received", payload, account_id=account_id, tenant_id=tenant_id
    )


async def list_events(
    stub: Stub, tokens: ContextTokens, ctx: CallContext, **request: object
) -> audit_pb2.ListEventsResponse:
    return await stub.ListEvents(
        audit_pb2.ListEventsRequest(**request), metadata=tokens.metadata(ctx)
    )


async def verify(
    stub: Stub, tokens: ContextTokens, account_id: uuid.UUID
) -> audit_pb2.VerifyChainResponse:
    return await stub.VerifyChain(
        audit_pb2.VerifyChainRequest(), metadata=tokens.metadata(caller(account_id, [VERIFY]))
    )


async def listed(
    stub: Stub,
    tokens: ContextTokens,
    account_id: uuid.UUID,
    until: Callable[[list[audit_pb2.AuditEvent]], bool],
    *,
    event_type: str = "",
) -> list[audit_pb2.AuditEvent]:
    """The account's events (newest first) once `until` holds for them."""
    ctx = caller(account_id, [READ])
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        events = list((await list_events(stub, tokens, ctx, page_size=500, type=event_type)).events)
        if until(events):
            return events
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"events never arrived; have {[e.type for e in events]}")
        await asyncio.sleep(0.05)


def has_ids(*events: events_pb2.Event) -> Callable[[list[audit_pb2.AuditEvent]], bool]:
    wanted = {e.id for e in events}
    return lambda listed_events: wanted <= {e.event_id for e in listed_events}


async def recorded_account(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext, count: int
) -> tuple[uuid.UUID, list[audit_pb2.AuditEvent]]:
    """A fresh account with `count` events recorded, oldest first."""
    account = uuid.uuid4()
    published = [file_received(account, name=f"file-{n}.csv") for n in range(count)]
    for event in published:
        await publish(js, event)
    events = await listed(stub, tokens, account, has_ids(*published))
    return account, sorted(events, key=lambda e: e.sequence)


async def test_published_events_are_listed_for_their_account_with_payload_decoded(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    account, tenant = uuid.uuid4(), uuid.uuid4()
    who = actor(account)
    created = account_created(account, who)
    received = file_received(account, tenant_id=tenant)
    await publish(js, created)
    await publish(js, received)

    events = await listed(stub, tokens, account, has_ids(created, received))

    assert len(events) == 2
    assert [e.sequence for e in events] == [2, 1]
    oldest, newest = events[1], events[0]
    assert oldest.prev_hash == GENESIS_HASH and newest.prev_hash == oldest.hash
    by_id = {e.event_id: e for e in events}
    audit_created, audit_received = by_id[created.id], by_id[received.id]
    assert audit_created.type == "canopy.tenancy.account.created"
    assert audit_created.account_id == str(account) and audit_created.tenant_id == ""
    assert (audit_created.actor_id, audit_created.actor_kind) == (who.principal_id, "user")
    assert audit_created.source_address == "203.0.113.7"
    assert audit_created.correlation_id == who.correlation_id
    assert audit_created.occurred_at.ToDatetime(tzinfo=UTC) == created.occurred_at.ToDatetime(
        tzinfo=UTC
    )
    assert audit_created.recorded_at.seconds > 0
    created_payload = tenancy_pb2.AccountCreated()
    created.payload.Unpack(created_payload)
    assert json_format.MessageToDict(audit_created.payload) == {
        "@type": "type.googleapis.com/canopy.tenancy.v1.AccountCreated",
        "account_id": str(account),
        "name": "Acme Motors",
        "slug": created_payload.slug,
        "tier": "standard",
    }
    assert audit_received.tenant_id == str(tenant)
    received_payload = json_format.MessageToDict(audit_received.payload)
    assert received_payload["name"] == "customers.csv"
    assert received_payload["source_schema"] == "dms-customers"
    assert received_payload["size_bytes"] == "2048"
    assert received_payload["tenant_ids"] == [str(tenant)]

    result = await verify(stub, tokens, account)
    assert (result.ok, result.events_checked, result.reason) == (True, 2, "")


async def test_the_same_event_delivered_twice_is_recorded_once(
    stub: Stub,
    tokens: ContextTokens,
    js: JetStreamContext,
    superuser: psycopg.AsyncConnection,
) -> None:
    account = uuid.uuid4()
    event = account_created(account)
    await publish(js, event)
    await publish(js, event)  # a duplicate publish: JetStream drops it by Nats-Msg-Id
    await publish(js, event, msg_id=str(uuid.uuid4()))  # a republish: same consumer, seen id
    # The same envelope on another context's stream reaches another durable consumer.
    await publish(js, event, subject="canopy.identity.replayed.event", msg_id=str(uuid.uuid4()))
    after_tenancy = account_created(account)
    after_identity = new_event(
        "canopy.identity.login.succeeded", identity_pb2.LoginSucceeded(), account_id=account
    )
    await publish(js, after_tenancy)
    await publish(js, after_identity)

    events = await listed(stub, tokens, account, has_ids(after_tenancy, after_identity))

    assert [e.event_id for e in events].count(event.id) == 1
    assert len(events) == 3
    consumers = await (
        await superuser.execute(
            "SELECT consumer FROM audit.processed_events WHERE event_id = %s", [event.id]
        )
    ).fetchall()
    assert sorted(row[0] for row in consumers) == ["audit-identity", "audit-tenancy"]
    assert (await verify(stub, tokens, account)).ok


async def test_verify_names_an_altered_event(
    stub: Stub,
    tokens: ContextTokens,
    js: JetStreamContext,
    superuser: psycopg.AsyncConnection,
) -> None:
    account, events = await recorded_account(stub, tokens, js, 4)
    assert (await verify(stub, tokens, account)).ok

    await superuser.execute("SET session_replication_role = replica")  # bypasses the trigger
    await superuser.execute(
        "UPDATE audit.events SET payload = jsonb_set(payload, '{name}', '\"forged.csv\"')"
        " WHERE account_id = %s AND sequence = 2",
        [account],
    )

    result = await verify(stub, tokens, account)
    assert not result.ok
    assert result.first_bad_event_id == events[1].id
    assert result.reason == "hash mismatch: content altered"
    assert result.events_checked == 2


async def test_verify_names_the_event_after_a_removed_one(
    stub: Stub,
    tokens: ContextTokens,
    js: JetStreamContext,
    superuser: psycopg.AsyncConnection,
) -> None:
    account, events = await recorded_account(stub, tokens, js, 5)

    await superuser.execute("SET session_replication_role = replica")
    await superuser.execute(
        "DELETE FROM audit.events WHERE account_id = %s AND sequence = 3", [account]
    )

    result = await verify(stub, tokens, account)
    assert not result.ok
    assert result.first_bad_event_id == events[3].id
    assert result.reason == f"chain broken: event 3 missing before {events[3].id}"


async def test_verify_notices_events_removed_from_the_end(
    stub: Stub,
    tokens: ContextTokens,
    js: JetStreamContext,
    superuser: psycopg.AsyncConnection,
) -> None:
    account, events = await recorded_account(stub, tokens, js, 3)

    await superuser.execute("SET session_replication_role = replica")
    await superuser.execute(
        "DELETE FROM audit.events WHERE account_id = %s AND sequence = 3", [account]
    )

    result = await verify(stub, tokens, account)
    assert (result.ok, result.first_bad_event_id) == (False, "")
    assert result.reason == f"chain broken: event 3 missing after {events[1].id}"


async def test_events_cannot_be_changed_or_removed_by_the_app_or_the_owner(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext, config: AuditConfig
) -> None:
    account, _ = await recorded_account(stub, tokens, js, 1)
    statements = [
        "UPDATE audit.events SET payload = '{}' WHERE account_id = %s",
        "DELETE FROM audit.events WHERE account_id = %s",
        "TRUNCATE audit.events",
    ]
    for url, refusal in [
        (config.app_url(SCHEMA), "permission denied for table events"),
        (config.owner_url(SCHEMA), "audit events are append-only"),
    ]:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(url), autocommit=True
        ) as connection:
            await connection.execute(
                "SELECT set_config('app.account_id', %s, false),"
                " set_config('app.all_tenants', 'on', false)",
                [str(account)],
            )
            for statement in statements:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal):
                    params = [account] if "%s" in statement else None
                    await connection.execute(statement, params)
            rows = await (await connection.execute("SELECT count(*) FROM audit.events")).fetchone()
            assert rows == (1,)
    assert (await verify(stub, tokens, account)).ok


async def test_a_second_account_sees_none_of_the_first_accounts_events(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    first, events = await recorded_account(stub, tokens, js, 2)
    second = uuid.uuid4()
    other = caller(second, AUDITOR)

    everything = await list_events(stub, tokens, other, page_size=500)
    by_type = await list_events(stub, tokens, other, type=events[0].type)
    assert list(everything.events) == [] and list(by_type.events) == []
    result = await verify(stub, tokens, second)
    assert (result.ok, result.events_checked) == (True, 0)


async def test_an_app_session_without_context_sees_no_rows(
    stub: Stub,
    tokens: ContextTokens,
    js: JetStreamContext,
    config: AuditConfig,
    superuser: psycopg.AsyncConnection,
) -> None:
    await recorded_account(stub, tokens, js, 1)
    counts = "SELECT (SELECT count(*) FROM audit.events), (SELECT count(*) FROM audit.chain_heads)"
    stored = await (await superuser.execute(counts)).fetchone()
    assert stored is not None and min(stored) > 0
    async with await psycopg.AsyncConnection.connect(libpq_url(config.app_url(SCHEMA))) as app:
        assert await (await app.execute(counts)).fetchone() == (0, 0)
    db = Database(config.app_url(SCHEMA))
    try:
        async with db.transaction(Scope.nothing()) as session:
            assert (await session.execute(text(counts))).one() == (0, 0)
    finally:
        await db.dispose()


async def test_events_without_an_account_join_the_platform_chain(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    attempt = new_event(
        "canopy.identity.login.failed",
        identity_pb2.LoginFailed(email=f"nobody-{uuid.uuid4().hex[:8]}@example.com", reason="bad"),
        account_id=None,
        ctx=actor(None),
    )
    await publish(js, attempt)

    events = await listed(
        stub, tokens, PLATFORM_ACCOUNT_ID, has_ids(attempt), event_type=attempt.type
    )

    recorded = next(e for e in events if e.event_id == attempt.id)
    assert recorded.account_id == str(PLATFORM_ACCOUNT_ID)
    assert json_format.MessageToDict(recorded.payload)["reason"] == "bad"
    assert (await verify(stub, tokens, PLATFORM_ACCOUNT_ID)).ok


async def test_an_unknown_payload_type_is_recorded_not_dropped(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    account = uuid.uuid4()
    event = account_created(account)
    event.payload.CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/canopy.future.v9.Mystery", value=b"\x08\x96\x01")
    )
    await publish(js, event)

    [recorded] = await listed(stub, tokens, account, has_ids(event))

    assert json_format.MessageToDict(recorded.payload) == {
        "@type": "type.googleapis.com/canopy.future.v9.Mystery",
        "@value": "CJYB",
    }
    assert (await verify(stub, tokens, account)).ok


async def test_nested_unicode_and_numeric_payloads_verify_after_jsonb(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext, config: AuditConfig
) -> None:
    account = uuid.uuid4()
    struct = struct_pb2.Struct()
    struct.update(
        {"name": "Zoë ✓ 日本 🚗", "deep": {"list": [1, 2.5, 1e100, -0.0, 1e-7, True, None]}}
    )
    published = new_event("canopy.canonical.load.completed", struct, account_id=account)
    await publish(js, published)
    # Straight through the use case as well, with what a message could never carry.
    db = Database(config.app_url(SCHEMA))
    trail = AuditTrail(db=db, audit_log=SqlAuditLog)
    direct = EventRecord.of(
        event_id=uuid.uuid4(),
        type="canopy.canonical.schema.changed",
        account_id=account,
        tenant_id=None,
        actor_id="sütterlin\x00",
        actor_kind="user",
        source_address="",
        correlation_id="",
        occurred_at=datetime.now(UTC),
        payload={
            "z": {"b": [2**70, 10**30, 1.5e300, 0.1, 3.0], "a": '\u00e9\u0301 \\ " \n'},
            "a": [{"y": 1, "x": {"w": []}}, "nul\x00byte"],
            "nan": float("nan"),
        },
    )
    try:
        async with db.transaction(Scope.account(account)) as session:
            assert await trail.record(session, record=direct) is not None
        async with db.transaction(Scope.account(account)) as session:
            assert await trail.record(session, record=direct) is None  # recorded once
    finally:
        await db.dispose()

    events = await listed(stub, tokens, account, lambda found: len(found) == 2)

    by_id = {e.event_id: e for e in events}
    shown = json_format.MessageToDict(by_id[published.id].payload)
    assert shown["value"]["name"] == "Zoë ✓ 日本 🚗"
    assert shown["value"]["deep"]["list"][2] == 1e100
    assert json_format.MessageToDict(by_id[str(direct.event_id)].payload)["nan"] == "NaN"
    result = await verify(stub, tokens, account)
    assert (result.ok, result.events_checked, result.reason) == (True, 2, "")


async def test_events_page_newest_first_and_filter_by_type(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    account = uuid.uuid4()
    published: list[events_pb2.Event] = []
    for n in range(5):
        event = file_received(account, name=f"f{n}.csv") if n % 2 else account_created(account)
        published.append(event)
        await publish(js, event)
    await listed(stub, tokens, account, has_ids(*published))
    ctx = caller(account, [READ])

    sequences, token = [], ""
    for _ in range(3):
        page = await list_events(stub, tokens, ctx, page_size=2, page_token=token)
        sequences.append([e.sequence for e in page.events])
        token = page.next_page_token
    assert sequences == [[5, 4], [3, 2], [1]] and token == ""

    files = await list_events(stub, tokens, ctx, type="canopy.ingestion.file.received")
    assert [e.type for e in files.events] == ["canopy.ingestion.file.received"] * 2
    assert sorted(e.event_id for e in files.events) == sorted(
        e.id for e in published if e.type == "canopy.ingestion.file.received"
    )


async def test_a_tenant_scoped_caller_sees_only_its_tenants_events(
    stub: Stub, tokens: ContextTokens, js: JetStreamContext
) -> None:
    account, mine, theirs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    published = [
        file_received(account, tenant_id=mine),
        file_received(account, tenant_id=theirs),
        account_created(account),
    ]
    for event in published:
        await publish(js, event)
    await listed(stub, tokens, account, has_ids(*published))

    scoped = caller(account, [READ], tenant_ids=[mine])
    page = await list_events(stub, tokens, scoped)
    assert [e.event_id for e in page.events] == [published[0].id]


async def test_calls_need_a_token_the_permission_and_valid_paging(
    stub: Stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    cases: list[tuple[Message, object, grpc.StatusCode]] = [
        (audit_pb2.ListEventsRequest(), None, grpc.StatusCode.UNAUTHENTICATED),
        (audit_pb2.VerifyChainRequest(), None, grpc.StatusCode.UNAUTHENTICATED),
        (
            audit_pb2.ListEventsRequest(),
            caller(account, [VERIFY]),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (
            audit_pb2.VerifyChainRequest(),
            caller(account, [READ]),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        (audit_pb2.ListEventsRequest(), caller(None, AUDITOR), grpc.StatusCode.PERMISSION_DENIED),
        (
            audit_pb2.ListEventsRequest(page_token="not-ours"),
            caller(account, AUDITOR),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            audit_pb2.ListEventsRequest(page_size=-1),
            caller(account, AUDITOR),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]
    for request, ctx, status in cases:
        method = (
            stub.ListEvents
            if isinstance(request, audit_pb2.ListEventsRequest)
            else stub.VerifyChain
        )
        metadata = tokens.metadata(ctx) if isinstance(ctx, CallContext) else None
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await method(request, metadata=metadata)
        assert raised.value.code() == status, (request, ctx)


async def test_concurrent_appends_to_one_account_form_one_unbroken_chain(
    stub: Stub, tokens: ContextTokens, config: AuditConfig
) -> None:
    account = uuid.uuid4()
    db = Database(config.app_url(SCHEMA), pool_size=8)
    trail = AuditTrail(db=db, audit_log=SqlAuditLog)

    async def append(n: int) -> None:
        record = EventRecord.of(
            event_id=uuid.uuid4(),
            type="canopy.canonical.load.completed",
            account_id=account,
            tenant_id=None,
            actor_id="service:canonical",
            actor_kind="service",
            source_address="",
            correlation_id=str(n),
            occurred_at=datetime.now(UTC),
            payload={"n": n},
        )
        async with db.transaction(Scope.account(account)) as session:
            await trail.record(session, record=record)

    try:
        await asyncio.gather(*(append(n) for n in range(24)))
    finally:
        await db.dispose()

    events = await listed(stub, tokens, account, lambda found: len(found) == 24)
    assert sorted(e.sequence for e in events) == list(range(1, 25))
    result = await verify(stub, tokens, account)
    assert (result.ok, result.events_checked) == (True, 24)
