"""Users: creating one (or finding it by email) as a member of the caller's account; listing."""

from services.identity.adapters.events import builders
from services.identity.domain import users as rules
from services.identity.domain.roles import role_name
from services.identity.domain.users import User
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.roles import grant_in
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime import pages as paging
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput


async def create_user(
    *,
    store: IdentityStore,
    passwords: Passwords,
    ctx: CallContext,
    email: str,
    password: str,
    display_name: str,
    role: str,
) -> User:
    """Create the user if the email is new, else reuse it; then make it a member (idempotent).

    An existing user's password and name are never changed here: the caller's account may not
    be the only one the user belongs to.
    """
    account_id = ctx.require_account()
    email = rules.normalize_email(email)
    name = rules.display_name(display_name)
    wanted_role = role_name(role)
    scope = Scope.of(ctx)

    async with store.transaction(scope) as uow:
        existing = await uow.repos.users.by_email(email)
    password_hash = None
    if existing is None:
        if not password:
            raise InvalidInput("password is required to create a new user")
        rules.check_password(password, email=email)
        # Hashed outside any transaction: argon2 is slow on purpose.
        password_hash = await passwords.hash(password)

    async with store.transaction(scope) as uow:
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
            await uow.publish(builders.membership_created(user.id, account_id=account_id, ctx=ctx))
        if wanted_role:
            await grant_in(uow, account_id=account_id, user_id=user.id, role=wanted_role, ctx=ctx)
    return user


async def list_users(
    *, store: IdentityStore, ctx: CallContext, page_size: int, page_token: str
) -> tuple[list[User], str]:
    """One page of the account's members, by id; the next page's token or ''."""
    account_id = ctx.require_account()
    size = paging.page_size(page_size)
    after = paging.decode_token(page_token)
    async with store.transaction(Scope.of(ctx)) as uow:
        users = await uow.repos.users.members(account_id, after=after, limit=size + 1)
    if len(users) > size:
        users = users[:size]
        return users, paging.encode_token(users[-1].id)
    return users, ""
