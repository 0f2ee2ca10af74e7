"""Outbox, relay and consumer on the real PostgreSQL and NATS, in a scratch schema."""

import asyncio
import uuid

import nats
import psycopg
import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select, text

from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.runtime.config import RuntimeConfig, libpq_url
from services.runtime.db import Database, Scope
from services.runtime.events import new_event
from services.runtime.messaging import EventConsumer, ensure_streams, processed_events_table
from services.runtime.migrations import (
    create_outbox,
    create_processed_events,
    enable_account_rls,
    grant_app,
    provision_roles,
)
from services.runtime.outbox import Outbox, OutboxRelay, outbox_table

SCHEMA = "runtime_probe"
metadata = MetaData(schema=SCHEMA)
notes = Table(
    "notes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid),
    Column("body", Text),
)
outbox = outbox_table(metadata)
processed = processed_events_table(metadata)


class SqlOps:
    """Stands in for Alembic's `op` so the migration helpers run on a plain connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, statement: str) -> None:
        self.conn.execute(statement)


@pytest.fixture(scope="module")
def db(runtime_config: RuntimeConfig):
    provision_roles(runtime_config.database_url, SCHEMA)
    with psycopg.connect(libpq_url(runtime_config.owner_url(SCHEMA)), autocommit=True) as conn:
        conn.execute(
            f"DROP TABLE IF EXISTS {SCHEMA}.notes, {SCHEMA}.outbox, {SCHEMA}.processed_events"
        )
        ops = SqlOps(conn)
        conn.execute(
            f"CREATE TABLE {SCHEMA}.notes"
            " (id uuid PRIMARY KEY, account_id uuid NOT NULL, body text)"
        )
        enable_account_rls(ops, SCHEMA, "notes")
        grant_app(ops, SCHEMA, "notes")
        create_outbox(ops, SCHEMA)
        create_processed_events(ops, SCHEMA)
    return Database(runtime_config.app_url(SCHEMA))


async def add_note(db: Database, account: uuid.UUID, body: str) -> events_pb2.Event:
    event = new_event(
        "canopy.tenancy.tenant.created", tenancy_pb2.TenantCreated(name=body), account_id=account
    )
    async with db.transaction(Scope.account(account)) as session:
        await session.execute(notes.insert().values(id=uuid.uuid4(), account_id=account, body=body))
        await Outbox(outbox).add(session, event)
    return event


async def bodies(db: Database, scope: Scope) -> list[str]:
    async with db.transaction(scope) as session:
        return list((await session.execute(select(notes.c.body))).scalars())


async def test_rows_are_visible_only_in_their_account(db: Database) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await add_note(db, first, "first's")
    assert await bodies(db, Scope.account(first)) == ["first's"]
    assert await bodies(db, Scope.account(second)) == []
    assert await bodies(db, Scope.nothing()) == []


async def test_a_session_after_a_scoped_transaction_sees_nothing(db: Database) -> None:
    account = uuid.uuid4()
    await add_note(db, account, "scoped")
    async with db.engine.connect() as conn:
        async with conn.begin():
            await conn.execute(
                text("SELECT set_config('app.account_id', :a, true)"), {"a": str(account)}
            )
        rows = (await conn.execute(select(notes.c.body))).all()
    assert rows == []


async def test_writing_into_another_account_is_refused(db: Database) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope.account(mine)) as session:
            await session.execute(
                notes.insert().values(id=uuid.uuid4(), account_id=theirs, body="x")
            )


async def test_relay_publishes_with_event_id_as_message_id(db: Database, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js)
    account = uuid.uuid4()
    subscription = await js.subscribe("canopy.tenancy.tenant.created", ordered_consumer=True)
    event = await add_note(db, account, "relayed")
    relay = OutboxRelay(db, outbox, js)
    while await relay.publish_pending():
        pass
    received = None
    while received is None or received.id != event.id:
        message = await subscription.next_msg(timeout=5)
        received = events_pb2.Event.FromString(message.data)
    assert message.headers["Nats-Msg-Id"] == event.id
    duplicate = await js.publish(
        event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
    )
    assert duplicate.duplicate
    await nc.close()


async def test_consumer_handles_a_redelivered_event_once(db: Database, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js)
    account = uuid.uuid4()
    handled: list[str] = []

    async def handler(event: events_pb2.Event, session) -> None:
        handled.append(event.id)
        await session.execute(
            notes.insert().values(id=uuid.uuid4(), account_id=account, body=event.id)
        )

    event = new_event(
        "canopy.tenancy.tenant.created", tenancy_pb2.TenantCreated(), account_id=account
    )
    for copy in ("a", "b"):  # two copies that JetStream's dedupe cannot catch
        await js.publish(
            event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.id + copy}
        )
    consumer = EventConsumer(
        db=db,
        js=js,
        processed=processed,
        durable=f"probe-{uuid.uuid4().hex[:8]}",
        context="tenancy",
        filter_subject="canopy.tenancy.tenant.created",
        handler=lambda e, s: handler(e, s) if e.account_id == str(account) else asyncio.sleep(0),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    for _ in range(100):
        if len(await bodies(db, Scope.account(account))) >= 1 and len(handled) >= 1:
            await asyncio.sleep(0.5)
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task
    await nc.close()
    assert await bodies(db, Scope.account(account)) == [event.id]
