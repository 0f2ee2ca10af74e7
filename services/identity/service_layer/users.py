"""Users: creating one (or finding it by email) as a member, listing, changing, deactivating,
restoring and deleting members, and the caller's own profile."""

import uuid

from services.identity.adapters.events import builders
from services.identity.domain import users as rules
from services.identity.domain.errors import (
    EmailTaken,
    SharedProfile,
    UserNotFound,
)
from services.identity.domain.roles import role_name
from services.identity.domain.users import Membership, User
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.domains import apply_domain_rules, withdraw_rule_grants
from services.identity.service_layer.roles import grant_in, guard_last_admin
from services.identity.service_layer.unit_of_work import UnitOfWork
from services.runtime import pages as paging
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput
from services.runtime.ids import parse_id


async def create_user(
    deps: Deps,
    *,
    ctx: CallContext,
    email: str,
    password: str,
    display_name: str,
    role: str,
) -> User:
    """Create the user if the email is new, else reuse it; then make it a member (idempotent).

    An existing user's password and name are never changed here: the caller's account may not
    be the only one the user belongs to. The account's domain rules apply to the new member.
    """
    account_id = ctx.require_account()
    email = rules.normalize_email(email)
    name = rules.display_name(display_name)
    wanted_role = role_name(role)
    scope = Scope.of(ctx)

    async with deps.store.transaction(scope) as uow:
        existing = await uow.repos.users.by_email(email)
    password_hash = None
    if existing is None:
        if not password:
            raise InvalidInput("password is required to create a new user")
        rules.check_password(password, email=email)
        # Hashed outside any transaction: argon2 is slow on purpose.
        password_hash = await deps.passwords.hash(password)
    elif not existing.active:
        raise Forbidden("this email belongs to a deactivated or erased user")

    async with deps.store.transaction(scope) as uow:
        user = existing
        if user is None:
            assert password_hash is not None
            user = await uow.repos.users.add(
                email=email, display_name=name, password_hash=password_hash
            )
            if user is not None:
                await uow.publish(builders.user_created(user, account_id=account_id, ctx=ctx))
            else:  # created concurrently since we looked
                user = await uow.repos.users.by_email(email)
                assert user is not None
        if await uow.repos.memberships.add(account_id, user.id):
            await uow.changed_authorization(account_id)
            await uow.publish(builders.membership_created(user.id, account_id=account_id, ctx=ctx))
        if wanted_role:
            await grant_in(
                uow,
                account_id=account_id,
                principal_id=user.id,
                role=wanted_role,
                catalogue=deps.catalogue,
                ctx=ctx,
            )
        await apply_domain_rules(
            uow, account_id=account_id, user=user, catalogue=deps.catalogue, ctx=ctx
        )
    return user


async def list_users(
    deps: Deps, *, ctx: CallContext, page_size: int, page_token: str
) -> tuple[list[User], str]:
    """One page of the account's members, by id; the next page's token or ''."""
    account_id = ctx.require_account()
    size = paging.page_size(page_size)
    after = paging.decode_token(page_token)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        users = await uow.repos.users.members(account_id, after=after, limit=size + 1)
    if len(users) > size:
        users = users[:size]
        return users, paging.encode_token(users[-1].id)
    return users, ""


async def _member(uow: UnitOfWork, account_id: uuid.UUID, user_id: uuid.UUID) -> User:
    user = await uow.repos.users.member(account_id, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def update_user(
    deps: Deps, *, ctx: CallContext, user_id: str, email: str, display_name: str
) -> User:
    """Change the email or name of a member that belongs to no other account.

    A new email domain withdraws the grants domain rules made for the old one and applies the
    rules of the new one.
    """
    account_id = ctx.require_account()
    wanted = parse_id(user_id, field="user_id")
    new_email = rules.normalize_email(email) if email.strip() else None
    new_name = rules.display_name(display_name) if display_name.strip() else None
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        user = await _member(uow, account_id, wanted)
        if new_email is None and new_name is None:
            return user
        memberships = await uow.repos.memberships.all_of(wanted)
        if any(m.account_id != account_id for m in memberships):
            raise SharedProfile()
        changed = await uow.repos.users.update_profile(
            wanted, email=new_email, display_name=new_name
        )
        if changed is None:
            raise EmailTaken()
        fields = [
            f
            for f, new, old in (
                ("email", new_email, user.email),
                ("display_name", new_name, user.display_name),
            )
            if new is not None and new != old
        ]
        if changed.email_domain != user.email_domain:
            await withdraw_rule_grants(uow, account_id=account_id, ctx=ctx, principal_id=wanted)
            await apply_domain_rules(
                uow, account_id=account_id, user=changed, catalogue=deps.catalogue, ctx=ctx
            )
        await uow.changed_authorization(account_id)
        await uow.publish(
            builders.user_changed(wanted, "updated", account_id=account_id, ctx=ctx, fields=fields)
        )
    return await _reload(deps, ctx, account_id, wanted)


async def _reload(deps: Deps, ctx: CallContext, account_id: uuid.UUID, user_id: uuid.UUID) -> User:
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        return await _member(uow, account_id, user_id)


async def set_active(deps: Deps, *, ctx: CallContext, user_id: str, active: bool) -> User:
    """Deactivate (or restore) a member in this account: no sign-in into it, no refresh, no key.

    The authz version moves in the same transaction, so sessions stop at the next request.
    """
    account_id = ctx.require_account()
    wanted = parse_id(user_id, field="user_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        await _member(uow, account_id, wanted)
        if not active:
            await guard_last_admin(uow, account_id, wanted)
        if await uow.repos.memberships.set_deactivated(account_id, wanted, deactivated=not active):
            if not active:
                await uow.repos.refresh_tokens.revoke_of_user(wanted, account_id)
            await uow.changed_authorization(account_id)
            verb = "restored" if active else "deactivated"
            await uow.publish(builders.user_changed(wanted, verb, account_id=account_id, ctx=ctx))
    return await _reload(deps, ctx, account_id, wanted)


async def delete_user(deps: Deps, *, ctx: CallContext, user_id: str) -> bool:
    """Remove the member: grants, keys, membership; erase the person if no account is left.

    Returns whether the personal data was erased. The audit trail keeps the user's id.
    """
    account_id = ctx.require_account()
    wanted = parse_id(user_id, field="user_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        await _member(uow, account_id, wanted)
        await guard_last_admin(uow, account_id, wanted)
        await uow.repos.grants.remove_all(account_id, wanted)
        await uow.repos.api_keys.revoke_of_owner(account_id, wanted)
        await uow.repos.memberships.remove(account_id, wanted)
        await uow.repos.refresh_tokens.revoke_of_user(wanted, account_id)
        erase = not await uow.repos.memberships.all_of(wanted)
        if erase:
            user = await uow.repos.users.by_id(wanted)
            assert user is not None
            await uow.repos.users.erase(wanted, email=rules.erased_email(wanted))
            await uow.repos.refresh_tokens.remove_of_user(wanted)
            await uow.repos.throttle.clear(user.email)
        await uow.changed_authorization(account_id)
        await uow.publish(
            builders.user_changed(wanted, "deleted", account_id=account_id, ctx=ctx, erased=erase)
        )
    return erase


async def me(deps: Deps, *, ctx: CallContext) -> tuple[User, list[Membership]]:
    """The calling user and every account it belongs to."""
    if ctx.principal_kind != "user":
        raise Forbidden("only a signed-in user has a profile")
    try:
        user_id = uuid.UUID(ctx.principal_id)
    except ValueError:
        raise Forbidden("only a signed-in user has a profile") from None
    async with deps.store.transaction(Scope.nothing()) as uow:
        user = await uow.repos.users.by_id(user_id)
        memberships = await uow.repos.memberships.all_of(user_id) if user else []
    if user is None or not user.active:
        raise UserNotFound()
    return user, memberships
