"""Database sessions that carry the row-level-security context, one transaction at a time.

Every transaction starts by setting `app.account_id`, `app.tenant_ids`, `app.all_tenants` and
`app.principal_id` with `set_config(..., true)` (transaction-local), in the same round trip
as its BEGIN. Policies read them; unset means no rows.

Round trips: the driver connections are in autocommit mode, so the driver sends no BEGIN of
its own; `transaction` sends `BEGIN; SELECT set_config(...)` as one simple-protocol string,
then the caller's statements, then COMMIT (or ROLLBACK). There is no pre-ping on checkout: a
connection found broken by that first round trip (nothing has run yet) is discarded and the
transaction starts again on a fresh one. Use `transaction` for every statement: a bare
`engine.connect()` runs each statement in its own implicit transaction.
"""

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq, sql
from sqlalchemy import Column, DateTime, Executable, func, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from services.runtime.context import CallContext

SET_CONTEXT = text(
    "SELECT set_config('app.account_id', :account_id, true),"
    " set_config('app.tenant_ids', :tenant_ids, true),"
    " set_config('app.all_tenants', :all_tenants, true),"
    " set_config('app.principal_id', :principal_id, true)"
)
# The same settings after BEGIN, as one simple-protocol string (values quoted as literals).
BEGIN_WITH_CONTEXT = sql.SQL(
    "BEGIN; SELECT set_config('app.account_id', {account_id}, true),"
    " set_config('app.tenant_ids', {tenant_ids}, true),"
    " set_config('app.all_tenants', {all_tenants}, true),"
    " set_config('app.principal_id', {principal_id}, true)"
)


@dataclass(frozen=True)
class Scope:
    """What one transaction may see: one account (or none) and some or all of its tenants."""

    account_id: uuid.UUID | None
    tenant_ids: frozenset[uuid.UUID] | None = None  # None: every tenant
    principal_id: str = ""

    @classmethod
    def of(cls, ctx: CallContext) -> "Scope":
        return cls(ctx.account_id, ctx.tenant_ids, ctx.principal_id)

    @classmethod
    def account(cls, account_id: uuid.UUID) -> "Scope":
        return cls(account_id)

    @classmethod
    def nothing(cls) -> "Scope":
        return cls(None)

    def settings(self) -> dict[str, str]:
        tenants = "{" + ",".join(sorted(str(t) for t in self.tenant_ids or ())) + "}"
        return {
            "account_id": str(self.account_id) if self.account_id else "",
            "tenant_ids": tenants,
            "all_tenants": "on" if self.tenant_ids is None and self.account_id else "",
            "principal_id": self.principal_id,
        }


class Database:
    """One engine per service process, connected as the service's application role."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, isolation_level="AUTOCOMMIT"
        )

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """A session in one transaction that sees only what `scope` allows; commits on success."""
        settings = {k: sql.Literal(v) for k, v in scope.settings().items()}
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            await _begin(session, settings)
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    async def read_one(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """The first value of one read run on its own: no transaction around it and no scope
        settings (row-level security shows it no rows), so one round trip. For a SECURITY
        DEFINER lookup the service needs on every call, like identity's authz version."""
        for attempt in range(3):
            async with self.engine.connect() as connection:
                try:
                    return (await connection.execute(statement, params)).scalar()
                except DBAPIError as error:
                    # A dropped connection: the read is safe to send again on a fresh one.
                    if not error.connection_invalidated or attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _begin(session: AsyncSession, settings: dict[str, sql.Literal]) -> None:
    """BEGIN and the scope's settings in one round trip, on a connection that works."""
    for attempt in range(3):
        connection = await session.connection()
        driver: psycopg.AsyncConnection[object] = (
            await connection.get_raw_connection()
        ).driver_connection  # type: ignore[assignment]
        if driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            await driver.rollback()  # never inherit an unfinished transaction
        begin = BEGIN_WITH_CONTEXT.format(**settings).as_string(driver)
        try:
            # Through SQLAlchemy, so a dropped server invalidates the whole pool, not just this
            # connection; with no parameters psycopg sends it as one simple-protocol query.
            await connection.exec_driver_sql(begin)
            return
        except DBAPIError as error:
            if not error.connection_invalidated or attempt == 2:
                raise
        # Nothing ran on the broken connection: start again on a fresh one.
        await session.rollback()
    raise AssertionError("unreachable")


def account_policy_sql(schema: str, table: str, column: str = "account_id") -> list[str]:
    """Force RLS on a table and limit every command to the current account's rows."""
    current = "(select nullif(current_setting('app.account_id', true), ''))::uuid"
    return [
        f"ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {schema}.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY account_isolation ON {schema}.{table}"
        f" USING ({column} = {current}) WITH CHECK ({column} = {current})",
    ]


def timestamps() -> list[Column[datetime]]:
    """`created_at` and `updated_at` (timestamptz, default now()): every table has both."""
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]
