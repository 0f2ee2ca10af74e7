"""Service accounts and API keys: created, listed, revoked, and authenticated for the gateway."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services.identity.adapters.events import builders
from services.identity.domain import api_keys as rules
from services.identity.domain.api_keys import ApiKey, ServiceAccount
from services.identity.domain.errors import (
    ApiKeyNotFound,
    InvalidApiKey,
    PermissionsNotHeld,
    ServiceAccountNotFound,
)
from services.identity.domain.roles import PrincipalKind, role_name
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.roles import grant_in
from services.identity.service_layer.unit_of_work import UnitOfWork
from services.runtime import pages as paging
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import AlreadyExists, Forbidden
from services.runtime.ids import parse_id


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    # The whole key: returned once, never stored.
    key: str


async def create_service_account(
    deps: Deps, *, ctx: CallContext, name: str, description: str, role: str
) -> ServiceAccount:
    account_id = ctx.require_account()
    wanted = rules.service_account_name(name)
    text = " ".join(description.split())[:500]
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        created = await uow.repos.service_accounts.add(
            account_id, name=wanted, description=text, created_by=ctx.principal_id
        )
        if created is None:
            raise AlreadyExists(f"a service account named {wanted!r} already exists")
        if role_name(role):
            await grant_in(
                uow,
                account_id=account_id,
                principal_id=created.id,
                role=role_name(role),
                catalogue=deps.catalogue,
                ctx=ctx,
                principal_kind=PrincipalKind.SERVICE_ACCOUNT,
            )
        await uow.publish(
            builders.service_account_changed(created, "created", account_id=account_id, ctx=ctx)
        )
        return created


async def list_service_accounts(
    deps: Deps, *, ctx: CallContext, page_size: int, page_token: str
) -> tuple[list[ServiceAccount], str]:
    account_id = ctx.require_account()
    size = paging.page_size(page_size)
    after = paging.decode_token(page_token)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        found = await uow.repos.service_accounts.listed(account_id, after=after, limit=size + 1)
    if len(found) > size:
        found = found[:size]
        return found, paging.encode_token(found[-1].id)
    return found, ""


async def delete_service_account(
    deps: Deps, *, ctx: CallContext, service_account_id: str
) -> ServiceAccount:
    """Deactivate it: keys revoked and grants revoked in the same transaction."""
    account_id = ctx.require_account()
    wanted = parse_id(service_account_id, field="service_account_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        removed = await uow.repos.service_accounts.remove(account_id, wanted)
        if removed is None:
            raise ServiceAccountNotFound()
        await uow.repos.api_keys.revoke_of_owner(account_id, wanted)
        revoked = await uow.repos.grants.revoke_where(account_id, principal_id=wanted)
        await uow.changed_authorization(account_id)
        await uow.publish(
            *(
                builders.grant_changed(g, "revoked", account_id=account_id, ctx=ctx)
                for g in revoked
            ),
            builders.service_account_changed(removed, "deleted", account_id=account_id, ctx=ctx),
        )
        return removed


async def _owner_permissions(
    uow: UnitOfWork, account_id: uuid.UUID, owner_id: uuid.UUID
) -> frozenset[str]:
    """Everything the owner holds in the account, on any scope."""
    granted = await uow.repos.grants.effective(account_id, owner_id)
    return frozenset(p for g in granted for p in g.permissions)


async def _create_key(
    deps: Deps,
    uow: UnitOfWork,
    *,
    ctx: CallContext,
    account_id: uuid.UUID,
    owner_id: uuid.UUID,
    owner_kind: PrincipalKind,
    name: str,
    permissions: list[str],
    expires_in_days: int,
) -> CreatedKey:
    wanted = deps.catalogue.check(permissions)
    not_held = wanted - await _owner_permissions(uow, account_id, owner_id)
    if not_held:
        raise PermissionsNotHeld(sorted(not_held))
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = await uow.repos.api_keys.add(
        account_id,
        owner_id=owner_id,
        owner_kind=owner_kind,
        name=rules.key_name(name),
        prefix=prefix,
        secret_hash=rules.secret_hash(secret),
        permissions=wanted,
        expires_at=datetime.now(UTC) + rules.lifetime(expires_in_days),
        created_by=ctx.principal_id,
    )
    await uow.publish(builders.api_key_changed(key, "created", account_id=account_id, ctx=ctx))
    return CreatedKey(api_key=key, key=rules.format_key(prefix, secret))


async def create_api_key(
    deps: Deps,
    *,
    ctx: CallContext,
    service_account_id: str,
    name: str,
    permissions: list[str],
    expires_in_days: int,
) -> CreatedKey:
    account_id = ctx.require_account()
    owner = parse_id(service_account_id, field="service_account_id")
    rules.lifetime(expires_in_days)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        if await uow.repos.service_accounts.by_id(account_id, owner) is None:
            raise ServiceAccountNotFound()
        return await _create_key(
            deps,
            uow,
            ctx=ctx,
            account_id=account_id,
            owner_id=owner,
            owner_kind=PrincipalKind.SERVICE_ACCOUNT,
            name=name,
            permissions=permissions,
            expires_in_days=expires_in_days,
        )


def _calling_user(ctx: CallContext) -> tuple[uuid.UUID, uuid.UUID]:
    account_id = ctx.require_account()
    if ctx.principal_kind != "user":
        raise Forbidden("only a signed-in user has personal API keys")
    try:
        return account_id, uuid.UUID(ctx.principal_id)
    except ValueError:
        raise Forbidden("only a signed-in user has personal API keys") from None


async def create_my_api_key(
    deps: Deps, *, ctx: CallContext, name: str, permissions: list[str], expires_in_days: int
) -> CreatedKey:
    account_id, user_id = _calling_user(ctx)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        if not await uow.repos.memberships.is_member(account_id, user_id):
            raise Forbidden("not an active member of this account")
        return await _create_key(
            deps,
            uow,
            ctx=ctx,
            account_id=account_id,
            owner_id=user_id,
            owner_kind=PrincipalKind.USER,
            name=name,
            permissions=permissions,
            expires_in_days=expires_in_days,
        )


async def list_api_keys(deps: Deps, *, ctx: CallContext, owner_id: str) -> list[ApiKey]:
    account_id = ctx.require_account()
    owner = parse_id(owner_id, field="service_account_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        if await uow.repos.service_accounts.by_id(account_id, owner) is None:
            raise ServiceAccountNotFound()
        return await uow.repos.api_keys.of_owner(account_id, owner)


async def list_my_api_keys(deps: Deps, *, ctx: CallContext) -> list[ApiKey]:
    account_id, user_id = _calling_user(ctx)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        return await uow.repos.api_keys.of_owner(account_id, user_id)


async def revoke_api_key(
    deps: Deps, *, ctx: CallContext, api_key_id: str, own_only: bool = False
) -> ApiKey:
    account_id = ctx.require_account()
    wanted = parse_id(api_key_id, field="api_key_id")
    mine = _calling_user(ctx)[1] if own_only else None
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        key = await uow.repos.api_keys.by_id(account_id, wanted)
        if key is None or (mine is not None and key.owner_id != mine):
            raise ApiKeyNotFound()
        revoked = await uow.repos.api_keys.revoke(account_id, wanted)
        if revoked is None:
            return key  # already revoked
        await uow.changed_authorization(account_id)
        await uow.publish(
            builders.api_key_changed(revoked, "revoked", account_id=account_id, ctx=ctx)
        )
        return revoked


async def authenticate(deps: Deps, *, key: str) -> ApiKey:
    """The live key behind `key`, or InvalidApiKey: unknown, wrong secret, expired, revoked,
    or an owner that is deleted or deactivated. Records last use at most once a minute."""
    parsed = rules.parse_key(key)
    if parsed is None:
        raise InvalidApiKey()
    prefix, secret = parsed
    async with deps.store.transaction(Scope.nothing()) as uow:
        found = await uow.repos.api_keys.by_prefix(prefix)
    if found is None or not rules.secret_matches(secret, found[2]):
        raise InvalidApiKey()
    key_id, account_id, _ = found
    async with deps.store.transaction(Scope.account(account_id)) as uow:
        stored = await uow.repos.api_keys.by_id(account_id, key_id)
        if stored is None or not stored.usable(datetime.now(UTC)):
            raise InvalidApiKey()
        if stored.owner_kind is PrincipalKind.SERVICE_ACCOUNT:
            owner_ok = await uow.repos.service_accounts.by_id(account_id, stored.owner_id)
        else:
            user = await uow.repos.users.by_id(stored.owner_id)
            owner_ok = (
                user is not None
                and user.active
                and await uow.repos.memberships.is_member(account_id, stored.owner_id)
            )
        if not owner_ok:
            raise InvalidApiKey()
        await uow.repos.api_keys.touch(account_id, key_id, every_seconds=deps.api_key_touch_seconds)
        return stored
