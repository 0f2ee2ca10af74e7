"""Handlers of the events identity consumes."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.identity.domain.roles import PermissionCatalogue
from services.identity.service_layer.roles import seed_presets
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.context import service_context
from services.runtime.events import unpack

log = logging.getLogger(__name__)

ACCOUNTS_CONSUMER = "identity-accounts"
ACCOUNT_CREATED = "canopy.tenancy.account.created"


class AccountCreatedHandler:
    """Seeds the preset roles of a new account (canopy.tenancy.account.created)."""

    def __init__(self, store: IdentityStore, catalogue: PermissionCatalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    async def __call__(self, event: events_pb2.Event, session: AsyncSession) -> None:
        unpack(event, tenancy_pb2.AccountCreated)
        if not event.account_id:
            # The consumer scopes the session by the envelope's account; without one it
            # could write nothing, and retrying would not change that.
            log.warning(
                "account.created without account_id ignored",
                extra={"fields": {"event_id": event.id}},
            )
            return
        account_id = uuid.UUID(event.account_id)
        ctx = service_context(
            "identity", account_id=account_id, permissions=(), correlation_id=event.correlation_id
        )
        created = await seed_presets(
            self.store.on(session), account_id=account_id, catalogue=self.catalogue, ctx=ctx
        )
        log.info(
            "preset roles seeded",
            extra={"fields": {"account_id": str(account_id), "created": created}},
        )
