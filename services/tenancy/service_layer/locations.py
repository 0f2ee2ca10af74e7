"""Tenant locations: read, set (create or replace) and remove, within the caller's tenants."""

import uuid

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import NotFound
from services.tenancy.domain.locations import TenantLocation, location_removed
from services.tenancy.service_layer.ports import Transactions, UnitOfWork


async def _require_tenant(uow: UnitOfWork, ctx: CallContext, tenant_id: uuid.UUID) -> uuid.UUID:
    account_id = ctx.require_account()
    if await uow.tenants.get(account_id, tenant_id, within=ctx.tenant_ids) is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return account_id


async def get_location(
    transactions: Transactions, *, ctx: CallContext, tenant_id: uuid.UUID
) -> TenantLocation:
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        account_id = await _require_tenant(uow, ctx, tenant_id)
        location = await uow.locations.get(account_id, tenant_id)
    if location is None:
        raise NotFound(f"tenant {tenant_id} has no location")
    return location


async def set_location(
    transactions: Transactions,
    *,
    ctx: CallContext,
    tenant_id: uuid.UUID,
    address_lines: list[str],
    city: str,
    postal_code: str,
    region: str,
    country: str,
    latitude: float | None,
    longitude: float | None,
) -> TenantLocation:
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        # The tenant first: someone who cannot see it learns nothing, not even from a bad body.
        account_id = await _require_tenant(uow, ctx, tenant_id)
        location = TenantLocation.set(
            account_id=account_id,
            tenant_id=tenant_id,
            address_lines=address_lines,
            city=city,
            postal_code=postal_code,
            region=region,
            country=country,
            latitude=latitude,
            longitude=longitude,
        )
        await uow.locations.put(location)
        await uow.emit(location.pull_events())
    return location


async def delete_location(
    transactions: Transactions, *, ctx: CallContext, tenant_id: uuid.UUID
) -> None:
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        account_id = await _require_tenant(uow, ctx, tenant_id)
        if not await uow.locations.delete(account_id, tenant_id):
            raise NotFound(f"tenant {tenant_id} has no location")
        await uow.emit([location_removed(account_id, tenant_id)])
