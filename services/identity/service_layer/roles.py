"""Roles and grants: presets, custom roles, the permission catalogue, granting and revoking."""

import uuid

from services.identity.adapters.events import builders
from services.identity.domain import roles as rules
from services.identity.domain.errors import (
    GrantNotFound,
    LastAdmin,
    PresetRoleReadOnly,
    PrincipalNotFound,
    RoleExists,
    RoleInUse,
    RoleNotFound,
    UnknownRole,
)
from services.identity.domain.roles import (
    ADMIN,
    GrantScope,
    PermissionCatalogue,
    PrincipalKind,
    Role,
    RoleDiff,
    RoleGrant,
    ScopeType,
    role_name,
)
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.ports import TenantDirectory, UnknownScope
from services.identity.service_layer.unit_of_work import IdentityStore, UnitOfWork
from services.runtime import pages as paging
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput
from services.runtime.ids import parse_id


async def seed_presets(
    uow: UnitOfWork, *, account_id: uuid.UUID, catalogue: PermissionCatalogue, ctx: CallContext
) -> list[str]:
    """Create the account's missing presets and update outdated ones (idempotent).

    The names created.
    """
    created, updated = await uow.repos.roles.seed_presets(
        account_id, rules.preset_role_rows(catalogue)
    )
    if created:
        await uow.publish(builders.roles_seeded(created, account_id=account_id, ctx=ctx))
    if updated:
        await uow.changed_authorization(account_id)
    return created


async def principal_kind_of(
    uow: UnitOfWork, account_id: uuid.UUID, principal_id: uuid.UUID
) -> PrincipalKind:
    """A member user or a live service account of the account; else PrincipalNotFound."""
    if await uow.repos.users.member(account_id, principal_id) is not None:
        return PrincipalKind.USER
    if await uow.repos.service_accounts.by_id(account_id, principal_id) is not None:
        return PrincipalKind.SERVICE_ACCOUNT
    raise PrincipalNotFound()


async def check_scope(
    tenants: TenantDirectory, account_id: uuid.UUID, scope: GrantScope, ctx: CallContext
) -> None:
    """Refuse a tenant group or tenant that is not in the account (tenancy knows)."""
    if scope.type is ScopeType.ACCOUNT:
        return
    assert scope.id is not None
    groups = [scope.id] if scope.type is ScopeType.TENANT_GROUP else []
    single = [scope.id] if scope.type is ScopeType.TENANT else []
    found = await tenants.expand(
        account_id, group_ids=groups, tenant_ids=single, correlation_id=ctx.correlation_id
    )
    if single and scope.id not in found:
        raise UnknownScope("no such tenant in this account")


async def grant_in(
    uow: UnitOfWork,
    *,
    account_id: uuid.UUID,
    principal_id: uuid.UUID,
    role: str,
    catalogue: PermissionCatalogue,
    ctx: CallContext,
    scope: GrantScope | None = None,
    principal_kind: PrincipalKind = PrincipalKind.USER,
    domain_rule_id: uuid.UUID | None = None,
) -> RoleGrant:
    """Grant the named role on `scope` (default: the account), seeding the presets first."""
    await seed_presets(uow, account_id=account_id, catalogue=catalogue, ctx=ctx)
    found = await uow.repos.roles.by_name(account_id, role)
    if found is None:
        raise UnknownRole(role)
    grant, created = await uow.repos.grants.grant(
        account_id=account_id,
        principal_id=principal_id,
        principal_kind=principal_kind,
        role=found,
        scope=scope or GrantScope.account(),
        domain_rule_id=domain_rule_id,
    )
    if created:
        await uow.changed_authorization(account_id)
        await uow.publish(builders.grant_changed(grant, "granted", account_id=account_id, ctx=ctx))
    return grant


async def guard_last_admin(uow: UnitOfWork, account_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Refuse to take away the account's last active admin."""
    grants = uow.repos.grants
    if await grants.is_admin(account_id, user_id) and not await grants.other_admins(
        account_id, besides=user_id
    ):
        raise LastAdmin()


async def list_roles(*, store: IdentityStore, ctx: CallContext) -> list[Role]:
    account_id = ctx.require_account()
    async with store.transaction(Scope.of(ctx)) as uow:
        return await uow.repos.roles.all(account_id)


async def grant_role(
    deps: Deps,
    *,
    ctx: CallContext,
    user_id: str,
    role: str,
    scope_type: str = "",
    scope_id: str = "",
) -> RoleGrant:
    account_id = ctx.require_account()
    principal_id = parse_id(user_id, field="user_id")
    name = role_name(role)
    if not name:
        raise InvalidInput("role is required")
    scope = GrantScope.parse(scope_type, scope_id)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        kind = await principal_kind_of(uow, account_id, principal_id)
    # Outside the transaction: a call to tenancy must not hold database locks.
    await check_scope(deps.tenants, account_id, scope, ctx)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        kind = await principal_kind_of(uow, account_id, principal_id)
        return await grant_in(
            uow,
            account_id=account_id,
            principal_id=principal_id,
            role=name,
            catalogue=deps.catalogue,
            ctx=ctx,
            scope=scope,
            principal_kind=kind,
        )


async def revoke_grant(deps: Deps, *, ctx: CallContext, grant_id: str) -> RoleGrant:
    """Revoke; the authz version moves in the same transaction, so no cache outlives it."""
    account_id = ctx.require_account()
    wanted = parse_id(grant_id, field="grant_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        grant = await uow.repos.grants.by_id(account_id, wanted)
        if grant is None:
            raise GrantNotFound()
        if (
            grant.role == ADMIN
            and grant.scope.type is ScopeType.ACCOUNT
            and grant.principal_kind is PrincipalKind.USER
            and not await uow.repos.grants.other_admins(account_id, besides=grant.principal_id)
        ):
            raise LastAdmin()
        if await uow.repos.grants.revoke(account_id, wanted):
            await uow.changed_authorization(account_id)
            await uow.publish(
                builders.grant_changed(grant, "revoked", account_id=account_id, ctx=ctx)
            )
        return grant


async def list_grants(
    *, store: IdentityStore, ctx: CallContext, user_id: str, page_size: int, page_token: str
) -> tuple[list[RoleGrant], str]:
    account_id = ctx.require_account()
    principal = parse_id(user_id, field="user_id") if user_id.strip() else None
    size = paging.page_size(page_size)
    after = paging.decode_token(page_token)
    async with store.transaction(Scope.of(ctx)) as uow:
        grants = await uow.repos.grants.listed(
            account_id, principal_id=principal, after=after, limit=size + 1
        )
    if len(grants) > size:
        grants = grants[:size]
        return grants, paging.encode_token(grants[-1].id)
    return grants, ""


async def create_role(
    deps: Deps,
    *,
    ctx: CallContext,
    name: str,
    clone_from: str,
    permissions: list[str],
    description: str,
) -> Role:
    account_id = ctx.require_account()
    wanted = rules.custom_role_name(name)
    text = rules.description(description)
    base = role_name(clone_from)
    chosen = deps.catalogue.check(permissions) if permissions else None
    if base and base not in rules.PRESET_NAMES:
        raise InvalidInput(f"clone_from must name a preset role ({', '.join(rules.PRESET_NAMES)})")
    if not base and chosen is None:
        raise InvalidInput("give the role's permissions, or a preset to clone_from")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        await seed_presets(uow, account_id=account_id, catalogue=deps.catalogue, ctx=ctx)
        if chosen is None:
            preset = await uow.repos.roles.by_name(account_id, base)
            assert preset is not None
            chosen = frozenset(preset.permissions)
        role = await uow.repos.roles.add(
            account_id, name=wanted, permissions=chosen, based_on=base, description=text
        )
        if role is None:
            raise RoleExists(wanted)
        await uow.changed_authorization(account_id)
        await uow.publish(builders.role_changed(role, "created", account_id=account_id, ctx=ctx))
        return role


async def update_role(
    deps: Deps,
    *,
    ctx: CallContext,
    role_id: str,
    name: str,
    permissions: list[str],
    replace_permissions: bool,
    description: str | None,
) -> Role:
    account_id = ctx.require_account()
    wanted = parse_id(role_id, field="role_id")
    new_name = rules.custom_role_name(name) if name.strip() else None
    new_permissions = (
        deps.catalogue.check(permissions) if replace_permissions or permissions else None
    )
    text = rules.description(description) if description is not None else None
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        role = await uow.repos.roles.by_id(account_id, wanted)
        if role is None:
            raise RoleNotFound()
        if role.preset:
            raise PresetRoleReadOnly()
        changed = await uow.repos.roles.change(
            account_id, wanted, name=new_name, permissions=new_permissions, description=text
        )
        if changed is None:
            raise RoleExists(new_name or role.name)
        await uow.changed_authorization(account_id)
        await uow.publish(builders.role_changed(changed, "updated", account_id=account_id, ctx=ctx))
        return changed


async def delete_role(deps: Deps, *, ctx: CallContext, role_id: str) -> None:
    account_id = ctx.require_account()
    wanted = parse_id(role_id, field="role_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        role = await uow.repos.roles.by_id(account_id, wanted)
        if role is None:
            raise RoleNotFound()
        if role.preset:
            raise PresetRoleReadOnly()
        grants, domain_rules = await uow.repos.roles.uses(account_id, wanted)
        if grants or domain_rules:
            raise RoleInUse(grants, domain_rules)
        await uow.repos.roles.remove(account_id, wanted)
        await uow.changed_authorization(account_id)
        await uow.publish(builders.role_changed(role, "deleted", account_id=account_id, ctx=ctx))


async def diff_role(deps: Deps, *, ctx: CallContext, role_id: str, against: str) -> RoleDiff:
    account_id = ctx.require_account()
    wanted = parse_id(role_id, field="role_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        role = await uow.repos.roles.by_id(account_id, wanted)
        if role is None:
            raise RoleNotFound()
        base = role_name(against) or role.based_on
        if not base:
            raise InvalidInput("this role was not cloned from a preset: name one in `against`")
        if base not in rules.PRESET_NAMES:
            raise InvalidInput(f"against must name a preset role ({', '.join(rules.PRESET_NAMES)})")
    preset = rules.preset_roles(deps.catalogue)[base]
    return rules.diff(role.permissions, preset, against=base)


def list_permissions(deps: Deps) -> PermissionCatalogue:
    return deps.catalogue
