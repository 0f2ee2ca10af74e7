"""Creating and reading drop zones."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.adapters.events import builders
from services.ingestion.domain.dropzones import DropZone, Route, dropzone_spec
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.ids import new_id
from services.runtime.pages import Page, decode_token, page_size, paged


async def create_dropzone(
    *,
    ports: Ports,
    ctx: CallContext,
    name: str,
    tenant_ids: Sequence[uuid.UUID],
    routes: Sequence[Route],
) -> DropZone:
    account_id = ctx.require_account()
    spec = dropzone_spec(name=name, tenant_ids=tenant_ids, routes=routes)
    if ctx.tenant_ids is not None:
        outside = [t for t in spec.tenant_ids if t not in ctx.tenant_ids]
        if outside:
            raise Forbidden(f"tenant {outside[0]} is outside your tenant scope")
    unknown = await ports.tenants.unknown_tenants(
        account_id, spec.tenant_ids, correlation_id=ctx.correlation_id
    )
    if unknown:
        raise InvalidInput(f"unknown tenant: {', '.join(str(t) for t in unknown)}")
    now = datetime.now(UTC)
    zone = DropZone(
        id=new_id(),
        account_id=account_id,
        name=spec.name,
        tenant_ids=spec.tenant_ids,
        routes=spec.routes,
        created_at=now,
        updated_at=now,
    )
    async with ports.db.transaction(Scope.of(ctx)) as session:
        await Repositories(session).dropzones.add(zone)
        await ports.outbox.add(session, builders.dropzone_created(zone, ctx))
    return zone


async def list_dropzones(
    *, ports: Ports, ctx: CallContext, page_size_requested: int = 0, page_token: str = ""
) -> Page[DropZone]:
    account_id = ctx.require_account()
    size = page_size(page_size_requested)
    after = decode_token(page_token)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        rows = await Repositories(session).dropzones.page(account_id, after=after, limit=size + 1)
    return paged(rows, size, lambda zone: zone.id)


async def get_dropzone(*, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID) -> DropZone:
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        zone = await Repositories(session).dropzones.get(account_id, dropzone_id)
    if zone is None:
        raise NotFound(f"drop zone {dropzone_id} not found")
    return zone
