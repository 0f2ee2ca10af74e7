"""Tenants and tenant mapping codes of the caller's account, within the caller's tenant scope."""

import uuid

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.ids import new_id
from services.tenancy.domain.model import Tenant, TenantMappingCode, clean_source
from services.tenancy.service_layer.paging import Page, PageRequest, page_of
from services.tenancy.service_layer.ports import Transactions

MAX_CODES_PER_RESOLVE = 50_000


async def create_tenant(transactions: Transactions, *, ctx: CallContext, name: str) -> Tenant:
    account_id = ctx.require_account()
    if ctx.tenant_ids is not None:
        raise Forbidden("creating a tenant needs access to the whole account")
    tenant = Tenant.create(id=new_id(), account_id=account_id, name=name)
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        await uow.tenants.add(tenant)
        await uow.emit(tenant.pull_events())
    return tenant


async def get_tenant(
    transactions: Transactions, *, ctx: CallContext, tenant_id: uuid.UUID
) -> Tenant:
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        tenant = await uow.tenants.get(account_id, tenant_id, within=ctx.tenant_ids)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def list_tenants(
    transactions: Transactions, *, ctx: CallContext, page: PageRequest
) -> Page[Tenant]:
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        rows = await uow.tenants.list_page(
            account_id, within=ctx.tenant_ids, after=page.after, limit=page.size + 1
        )
    return page_of(rows, page, lambda tenant: tenant.id)


async def create_mapping_code(
    transactions: Transactions,
    *,
    ctx: CallContext,
    tenant_id: uuid.UUID,
    source: str,
    code: str,
) -> TenantMappingCode:
    account_id = ctx.require_account()
    mapping = TenantMappingCode.create(
        id=new_id(), account_id=account_id, tenant_id=tenant_id, source=source, code=code
    )
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        if await uow.tenants.get(account_id, tenant_id, within=ctx.tenant_ids) is None:
            raise NotFound(f"tenant {tenant_id} not found")
        await uow.mapping_codes.add(mapping)
        await uow.emit(mapping.pull_events())
    return mapping


async def list_mapping_codes(
    transactions: Transactions, *, ctx: CallContext, source: str, page: PageRequest
) -> Page[TenantMappingCode]:
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        rows = await uow.mapping_codes.list_page(
            account_id,
            within=ctx.tenant_ids,
            source=source.strip() or None,
            after=page.after,
            limit=page.size + 1,
        )
    return page_of(rows, page, lambda mapping: mapping.id)


async def resolve_codes(
    transactions: Transactions, *, ctx: CallContext, source: str, codes: list[str]
) -> dict[str, uuid.UUID]:
    """code -> tenant id for the known codes (matched exactly); unknown codes are left out."""
    account_id = ctx.require_account()
    source = clean_source(source)
    wanted = sorted({code for code in codes if code})
    if len(wanted) > MAX_CODES_PER_RESOLVE:
        raise InvalidInput(f"at most {MAX_CODES_PER_RESOLVE} distinct codes per call")
    if not wanted:
        return {}
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        return await uow.mapping_codes.resolve(
            account_id, within=ctx.tenant_ids, source=source, codes=wanted
        )
