"""Database.transaction on the real PostgreSQL: round trips, scope settings, commit/rollback,
and recovery from a connection the server dropped."""

import asyncio
import tempfile
import uuid

import psycopg
import pytest
from sqlalchemy import Column, MetaData, Table, Text, Uuid, select, text

from services.runtime.config import RuntimeConfig, libpq_url
from services.runtime.db import Database, Scope
from services.runtime.migrations import enable_account_rls, grant_app, provision_roles

SCHEMA = "runtime_db_probe"
notes = Table(
    "notes",
    MetaData(schema=SCHEMA),
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid),
    Column("body", Text),
)


class SqlOps:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, statement: str) -> None:
        self.conn.execute(statement)


@pytest.fixture(scope="module")
def app_url(runtime_config: RuntimeConfig) -> str:
    provision_roles(runtime_config.database_url, SCHEMA)
    with psycopg.connect(libpq_url(runtime_config.owner_url(SCHEMA)), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.notes")
        conn.execute(
            f"CREATE TABLE {SCHEMA}.notes"
            " (id uuid PRIMARY KEY, account_id uuid NOT NULL, body text)"
        )
        enable_account_rls(SqlOps(conn), SCHEMA, "notes")
        grant_app(SqlOps(conn), SCHEMA, "notes")
    return runtime_config.app_url(SCHEMA)


@pytest.fixture
async def db(app_url: str):
    database = Database(app_url, pool_size=1)  # one connection: every test reuses it
    yield database
    await database.dispose()


async def add(db: Database, account: uuid.UUID, body: str) -> None:
    async with db.transaction(Scope.account(account)) as session:
        await session.execute(notes.insert().values(id=uuid.uuid4(), account_id=account, body=body))


async def bodies(db: Database, scope: Scope) -> list[str]:
    async with db.transaction(scope) as session:
        return sorted((await session.execute(select(notes.c.body))).scalars())


async def test_a_transaction_is_three_round_trips(db: Database) -> None:
    account = uuid.uuid4()
    await add(db, account, "counted")
    for _ in range(10):  # past psycopg's prepare threshold: still one simple query
        await bodies(db, Scope.account(account))
    async with db.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
    with tempfile.TemporaryFile("w+") as trace:
        driver.pgconn.trace(trace.fileno())
        try:
            assert await bodies(db, Scope.account(account)) == ["counted"]
        finally:
            driver.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t")[3].split()[0] for line in trace if "\tF\t" in line]
    # Each round trip ends with a simple Query or an extended-protocol Sync: BEGIN with the
    # settings, the SELECT, COMMIT. No pre-ping, no BEGIN of the driver's own.
    assert len([m for m in sent if m in ("Query", "Sync")]) == 3, sent


async def test_settings_are_set_verbatim_and_only_inside_the_transaction(db: Database) -> None:
    hostile = "x', true); DROP TABLE runtime_db_probe.notes; --\\ 'é"
    scope = Scope(uuid.uuid4(), frozenset({uuid.uuid4()}), principal_id=hostile)
    read = text(
        "SELECT current_setting('app.principal_id', true), current_setting('app.tenant_ids', true)"
    )
    async with db.transaction(scope) as session:
        principal, tenants = (await session.execute(read)).one()
    assert principal == hostile
    assert tenants == scope.settings()["tenant_ids"]
    async with db.engine.connect() as conn:  # the same connection, after the transaction
        principal, _ = (await conn.execute(read)).one()
    assert principal in ("", None)
    assert await bodies(db, Scope.nothing()) == []  # and the table is still there


async def test_a_failure_rolls_back_and_leaves_the_connection_clean(db: Database) -> None:
    account = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.transaction(Scope.account(account)) as session:
            await session.execute(
                notes.insert().values(id=uuid.uuid4(), account_id=account, body="lost")
            )
            raise RuntimeError("boom")
    with pytest.raises(Exception, match="duplicate key"):
        async with db.transaction(Scope.account(account)) as session:
            same = uuid.uuid4()
            await session.execute(notes.insert().values(id=same, account_id=account, body="a"))
            await session.execute(notes.insert().values(id=same, account_id=account, body="b"))
    await add(db, account, "kept")
    assert await bodies(db, Scope.account(account)) == ["kept"]


async def test_a_cancelled_transaction_is_rolled_back(db: Database) -> None:
    account = uuid.uuid4()
    entered = asyncio.Event()

    async def stuck() -> None:
        async with db.transaction(Scope.account(account)) as session:
            await session.execute(
                notes.insert().values(id=uuid.uuid4(), account_id=account, body="cancelled")
            )
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(stuck())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await bodies(db, Scope.account(account)) == []


async def test_a_connection_the_server_dropped_is_replaced(
    db: Database, runtime_config: RuntimeConfig
) -> None:
    account = uuid.uuid4()
    await add(db, account, "before")
    async with db.transaction(Scope.nothing()) as session:
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    with psycopg.connect(libpq_url(runtime_config.database_url), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    await asyncio.sleep(0.1)
    assert await bodies(db, Scope.account(account)) == ["before"]
    async with db.transaction(Scope.nothing()) as session:
        assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
