"""Resolve: a principal's permissions and tenant scope in one account (asked by the gateway)."""

import asyncio
import uuid

from services.identity.domain import resolution as rules
from services.identity.domain.resolution import GrantedPermissions, Resolution
from services.identity.domain.roles import PrincipalKind, RoleGrant
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.ports import TenantDirectory
from services.identity.service_layer.roles import principal_kind_of
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput
from services.runtime.ids import parse_id


async def expand_scopes(
    tenants: TenantDirectory,
    account_id: uuid.UUID,
    granted: list[GrantedPermissions],
    correlation_id: str | None,
) -> dict[frozenset[str], frozenset[uuid.UUID]]:
    """The tenants each narrow permission set covers: one tenancy call per set with groups."""
    buckets = rules.scope_buckets(granted)

    async def expand(groups: frozenset[uuid.UUID], single: frozenset[uuid.UUID]):  # type: ignore[no-untyped-def]
        if not groups:
            return single
        return await tenants.expand(
            account_id, group_ids=groups, tenant_ids=single, correlation_id=correlation_id
        )

    found = await asyncio.gather(*(expand(g, t) for g, t in buckets.values()))
    return dict(zip(buckets, found, strict=True))


async def resolve(
    *,
    store: IdentityStore,
    tenants: TenantDirectory,
    ctx: CallContext,
    principal_id: str,
    account_id: str,
) -> Resolution:
    """Without an account, default to the principal's only one; otherwise report ambiguity.

    The account's authz version is read before the grants, in the same transaction: an answer
    never pairs a version with grants older than it, so a cache that checks the version never
    serves a revoked grant.
    """
    if not principal_id.strip():
        raise InvalidInput("principal_id is required")
    pid = parse_id(principal_id, field="principal_id")
    wanted = parse_id(account_id, field="account_id") if account_id.strip() else None

    async with store.transaction(Scope.nothing()) as uow:
        user = await uow.repos.users.by_id(pid)
        if user is not None:
            kind = PrincipalKind.USER
            accounts = await uow.repos.memberships.accounts_of(pid)
        else:
            kind = PrincipalKind.SERVICE_ACCOUNT
            home = await uow.repos.service_accounts.account_of(pid)
            accounts = [home] if home is not None else []
    # An id that is neither a user nor a live service account is nobody.
    kind_name = kind.value if user is not None or accounts else ""
    if wanted is None:
        if len(accounts) != 1:
            return rules.ambiguous(len(accounts), principal_kind=kind_name)
        wanted = accounts[0]

    scope = Scope(account_id=wanted, principal_id=ctx.principal_id)
    async with store.transaction(scope) as uow:
        version = await uow.repos.authz.current(wanted)
        if kind is PrincipalKind.USER:
            # Unknown, deactivated or erased users hold nothing, whatever their grants say.
            member = (
                user is not None
                and user.active
                and await uow.repos.memberships.is_member(wanted, pid)
            )
        else:
            member = await uow.repos.service_accounts.by_id(wanted, pid) is not None
        granted = await uow.repos.grants.effective(wanted, pid) if member else []
    expanded = await expand_scopes(tenants, wanted, granted, ctx.correlation_id)
    return rules.resolution(
        account_id=wanted,
        member=member,
        granted=granted,
        expanded=expanded,
        membership_count=len(accounts),
        authz_version=version,
        principal_kind=kind_name,
    )


async def authz_version(*, store: IdentityStore, account_id: str) -> tuple[uuid.UUID, int]:
    """The account's current authz version: one primary-key read, one round trip."""
    wanted = parse_id(account_id, field="account_id")
    return wanted, await store.authz_version(wanted)


async def effective_permissions(
    deps: Deps, *, ctx: CallContext, user_id: str
) -> tuple[Resolution, list[RoleGrant]]:
    """What a user or service account of the caller's account may do, and the grants why."""
    account_id = ctx.require_account()
    pid = parse_id(user_id, field="user_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        await principal_kind_of(uow, account_id, pid)
        grants = await uow.repos.grants.listed(account_id, principal_id=pid, after=None, limit=1000)
    result = await resolve(
        store=deps.store,
        tenants=deps.tenants,
        ctx=ctx,
        principal_id=str(pid),
        account_id=str(account_id),
    )
    return result, grants
