"""Roles: seeding the presets of an account, listing roles, granting one to a member."""

import uuid

from services.identity.adapters.events import builders
from services.identity.domain.errors import UnknownRole, UserNotFound
from services.identity.domain.roles import Role, RoleGrant, role_name
from services.identity.service_layer.unit_of_work import IdentityStore, UnitOfWork
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput


async def seed_presets(uow: UnitOfWork, *, account_id: uuid.UUID, ctx: CallContext) -> list[str]:
    """Create the account's missing preset roles (idempotent); the names created."""
    created = await uow.repos.roles.seed_presets(account_id)
    if created:
        await uow.publish(builders.roles_seeded(created, account_id=account_id, ctx=ctx))
    return created


async def grant_in(
    uow: UnitOfWork, *, account_id: uuid.UUID, user_id: uuid.UUID, role: str, ctx: CallContext
) -> RoleGrant:
    """Grant the named role on the account to a member, seeding the presets first."""
    await seed_presets(uow, account_id=account_id, ctx=ctx)
    found = await uow.repos.roles.by_name(account_id, role)
    if found is None:
        raise UnknownRole(role)
    grant, created = await uow.repos.grants.grant(
        account_id=account_id, user_id=user_id, role=found
    )
    if created:
        await uow.publish(builders.grant_changed(grant, "granted", account_id=account_id, ctx=ctx))
    return grant


async def list_roles(*, store: IdentityStore, ctx: CallContext) -> list[Role]:
    account_id = ctx.require_account()
    async with store.transaction(Scope.of(ctx)) as uow:
        return await uow.repos.roles.all(account_id)


async def grant_role(
    *, store: IdentityStore, ctx: CallContext, user_id: str, role: str
) -> RoleGrant:
    account_id = ctx.require_account()
    member_id = parse_user_id(user_id)
    name = role_name(role)
    if not name:
        raise InvalidInput("role is required")
    async with store.transaction(Scope.of(ctx)) as uow:
        if not await uow.repos.memberships.is_member(account_id, member_id):
            raise UserNotFound()
        return await grant_in(uow, account_id=account_id, user_id=member_id, role=name, ctx=ctx)


def parse_user_id(value: str) -> uuid.UUID:
    if not value.strip():
        raise InvalidInput("user_id is required")
    try:
        return uuid.UUID(value.strip())
    except ValueError as error:
        raise InvalidInput("user_id must be a UUID") from error
