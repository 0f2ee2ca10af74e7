"""Helpers of the tenancy tests: unique slugs, the callers they play, events seen on JetStream."""

import asyncio
import uuid

from canopy.common.v1 import events_pb2
from services.runtime.context import ContextTokens
from tests.support import caller

OPERATOR_PERMISSIONS = (
    "tenancy.accounts:create",
    "tenancy.accounts:read",
    "tenancy.accounts:manage",
)
ACCOUNT_PERMISSIONS = ("tenancy.tenants:read", "tenancy.tenants:write", "tenancy.datakeys:use")


def unique_slug(prefix: str = "acme") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Calls:
    """Metadata for the callers the tests play: an operator, and people inside accounts."""

    def __init__(self, tokens: ContextTokens) -> None:
        self.tokens = tokens

    def operator(self) -> tuple[tuple[str, str], ...]:
        return self.tokens.metadata(caller(None, OPERATOR_PERMISSIONS, kind="operator"))

    def member(
        self,
        account_id: str,
        permissions: tuple[str, ...] = ACCOUNT_PERMISSIONS,
        *,
        tenant_ids: list[str] | None = None,
    ) -> tuple[tuple[str, str], ...]:
        tenants = None if tenant_ids is None else [uuid.UUID(t) for t in tenant_ids]
        return self.tokens.metadata(caller(uuid.UUID(account_id), permissions, tenant_ids=tenants))


class Published:
    """Tenancy events published on JetStream from the moment it was created."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[events_pb2.Event] = asyncio.Queue()

    async def wait_for(self, event_type: str, account_id: str) -> events_pb2.Event:
        async with asyncio.timeout(10):
            while True:
                event = await self.events.get()
                if event.type == event_type and event.account_id == account_id:
                    return event
