"""Database sessions that carry the row-level-security context, one transaction at a time.

Every transaction starts by setting `app.account_id`, `app.tenant_ids`, `app.all_tenants` and
`app.principal_id` with `set_config(..., true)` (transaction-local), in the same round trip
as the first statement's BEGIN. Policies read them; unset means no rows.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, func, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from services.runtime.context import CallContext

SET_CONTEXT = text(
    "SELECT set_config('app.account_id', :account_id, true),"
    " set_config('app.tenant_ids', :tenant_ids, true),"
    " set_config('app.all_tenants', :all_tenants, true),"
    " set_config('app.principal_id', :principal_id, true)"
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
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """A session in one transaction that sees only what `scope` allows; commits on success."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            async with session.begin():
                await session.execute(SET_CONTEXT, scope.settings())
                yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


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
