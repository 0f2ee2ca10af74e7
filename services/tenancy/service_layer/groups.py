"""The tenant tree: groups created, listed, moved, renamed and deleted; tenants placed in them;
and grant scopes (groups and tenants) expanded into the tenants they cover.

Changes to the tree take a per-account lock, so two concurrent moves can never build a cycle
and a group is never created under a path that a concurrent move is rewriting.
"""

import uuid
from dataclasses import dataclass

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.ids import new_id
from services.tenancy.domain.groups import TenantGroup, TreeLimits
from services.tenancy.domain.model import Tenant
from services.tenancy.service_layer.paging import Page, PageRequest, page_of
from services.tenancy.service_layer.ports import Transactions, UnitOfWork

MAX_IDS_PER_EXPANSION = 10_000


@dataclass(frozen=True)
class GroupWithAncestors:
    group: TenantGroup
    # From the root down to the parent.
    ancestors: list[TenantGroup]


@dataclass(frozen=True)
class DeletedSubtree:
    deleted_groups: int
    moved_tenants: int
    tenants_moved_to: uuid.UUID | None


def _whole_account(ctx: CallContext) -> uuid.UUID:
    account_id = ctx.require_account()
    if ctx.tenant_ids is not None:
        raise Forbidden("changing the tenant tree needs access to the whole account")
    return account_id


async def _group(uow: UnitOfWork, account_id: uuid.UUID, group_id: uuid.UUID) -> TenantGroup:
    group = await uow.groups.get(account_id, group_id)
    if group is None:
        raise NotFound(f"tenant group {group_id} not found")
    return group


async def _with_ancestors(
    uow: UnitOfWork, account_id: uuid.UUID, group_id: uuid.UUID
) -> GroupWithAncestors:
    chain = await uow.groups.get_with_ancestors(account_id, group_id)
    if not chain:
        raise NotFound(f"tenant group {group_id} not found")
    return GroupWithAncestors(chain[-1], chain[:-1])


async def create_group(
    transactions: Transactions,
    limits: TreeLimits,
    *,
    ctx: CallContext,
    type: str,
    name: str,
    parent_id: uuid.UUID | None,
) -> GroupWithAncestors:
    account_id = _whole_account(ctx)
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        await uow.groups.lock_tree(account_id)
        parent = None if parent_id is None else await _group(uow, account_id, parent_id)
        group = TenantGroup.create(
            id=new_id(), account_id=account_id, type=type, name=name, parent=parent, limits=limits
        )
        await uow.groups.add(group)
        await uow.emit(group.pull_events())
        return await _with_ancestors(uow, account_id, group.id)


async def get_group(
    transactions: Transactions, *, ctx: CallContext, group_id: uuid.UUID
) -> GroupWithAncestors:
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        return await _with_ancestors(uow, account_id, group_id)


async def list_groups(
    transactions: Transactions,
    *,
    ctx: CallContext,
    parent_id: uuid.UUID | None,
    page: PageRequest,
) -> Page[TenantGroup]:
    """The children of `parent_id`, or the root groups when it is None."""
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        if parent_id is not None:
            await _group(uow, account_id, parent_id)
        rows = await uow.groups.list_children(
            account_id, parent_id, after=page.after, limit=page.size + 1
        )
    return page_of(rows, page, lambda group: group.id)


async def update_group(
    transactions: Transactions,
    limits: TreeLimits,
    *,
    ctx: CallContext,
    group_id: uuid.UUID,
    name: str | None,
    move: bool,
    parent_id: uuid.UUID | None,
) -> GroupWithAncestors:
    """Rename (a name given) and/or move with the whole subtree (`move`: under `parent_id`, or
    to the root when it is None). Neither: the group as it is."""
    account_id = _whole_account(ctx)
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        await uow.groups.lock_tree(account_id)
        group = await _group(uow, account_id, group_id)
        if move:
            parent = None if parent_id is None else await _group(uow, account_id, parent_id)
            old_lineage = group.lineage
            height = await uow.groups.subtree_height(group)
            if group.move_under(parent, subtree_height=height, limits=limits):
                await uow.groups.move(group, old_lineage=old_lineage)
        if name is not None and group.rename(name):
            await uow.groups.rename(group)
        await uow.emit(group.pull_events())
        return await _with_ancestors(uow, account_id, group.id)


async def delete_group(
    transactions: Transactions, *, ctx: CallContext, group_id: uuid.UUID, recursive: bool
) -> DeletedSubtree:
    """Soft-delete a group (recursive: with its subtree; its tenants move to its parent)."""
    account_id = _whole_account(ctx)
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        await uow.groups.lock_tree(account_id)
        group = await _group(uow, account_id, group_id)
        child_groups, tenants = await uow.groups.contents(group)
        group.check_deletable(child_groups=child_groups, tenants=tenants, recursive=recursive)
        deletion = await uow.groups.delete_subtree(group)
        group.deleted(deleted_groups=deletion.deleted_groups, moved_tenants=deletion.moved_tenants)
        await uow.emit(group.pull_events())
    return DeletedSubtree(
        deleted_groups=deletion.deleted_groups,
        moved_tenants=deletion.moved_tenants,
        tenants_moved_to=group.parent_id,
    )


async def list_group_tenants(
    transactions: Transactions,
    *,
    ctx: CallContext,
    group_id: uuid.UUID,
    recursive: bool,
    page: PageRequest,
) -> Page[Tenant]:
    account_id = ctx.require_account()
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        group = await _group(uow, account_id, group_id)
        rows = await uow.tenants.list_in_group(
            group,
            recursive=recursive,
            within=ctx.tenant_ids,
            after=page.after,
            limit=page.size + 1,
        )
    return page_of(rows, page, lambda tenant: tenant.id)


async def move_tenant(
    transactions: Transactions,
    *,
    ctx: CallContext,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID | None,
) -> Tenant:
    """Place a tenant in a group, or in none (None)."""
    account_id = _whole_account(ctx)
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        await uow.groups.lock_tree(account_id)
        tenant = await uow.tenants.get(account_id, tenant_id, within=ctx.tenant_ids)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} not found")
        group = None if group_id is None else await _group(uow, account_id, group_id)
        if tenant.move_to(group_id):
            await uow.tenants.move(tenant, group)
            await uow.emit(tenant.pull_events())
    return tenant


async def expand_scope(
    transactions: Transactions,
    *,
    ctx: CallContext,
    group_ids: list[uuid.UUID],
    tenant_ids: list[uuid.UUID],
) -> list[uuid.UUID]:
    """Every tenant under the groups (whole subtrees) plus the tenants named, in one statement.
    Unknown, deleted or other accounts' ids add nothing."""
    account_id = ctx.require_account()
    groups, tenants = sorted(set(group_ids)), sorted(set(tenant_ids))
    if len(groups) > MAX_IDS_PER_EXPANSION or len(tenants) > MAX_IDS_PER_EXPANSION:
        raise InvalidInput(f"at most {MAX_IDS_PER_EXPANSION} group ids and tenant ids per call")
    if not groups and not tenants:
        return []
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        return await uow.tenants.expand(
            account_id, group_ids=groups, tenant_ids=tenants, within=ctx.tenant_ids
        )
