"""Sign-in, token refresh, rotation and revocation, account switching, and the public keys."""

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from services.identity.adapters.events import builders
from services.identity.domain import throttle as throttling
from services.identity.domain.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    LoginLocked,
    NotAMember,
    UserDeactivated,
)
from services.identity.domain.tokens import IssuedToken, PublicKey, token_hash
from services.identity.domain.users import MAX_EMAIL_LENGTH, User
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.domains import apply_domain_rules
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.signing import TokenSigner
from services.identity.service_layer.unit_of_work import IdentityStore, UnitOfWork
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput
from services.runtime.ids import new_id
from services.runtime.logs import correlation_id


def _anonymous(source_address: str, principal_id: str = "") -> CallContext:
    return CallContext(
        principal_id=principal_id,
        principal_kind="user" if principal_id else "anonymous",
        account_id=None,
        correlation_id=correlation_id.get() or str(new_id()),
        source_address=source_address,
    )


async def _new_refresh_token(
    uow: UnitOfWork,
    deps: Deps,
    *,
    user_id: uuid.UUID,
    account_id: uuid.UUID | None,
    family_id: uuid.UUID | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    await uow.repos.refresh_tokens.add(
        family_id=family_id or new_id(),
        user_id=user_id,
        account_id=account_id,
        token_hash=token_hash(token),
        expires_at=datetime.now(UTC) + timedelta(seconds=deps.refresh_lifetime_seconds),
    )
    return token


def _with_refresh(issued: IssuedToken, refresh_token: str, deps: Deps) -> IssuedToken:
    return IssuedToken(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        account_id=issued.account_id,
        refresh_token=refresh_token,
        refresh_expires_in=deps.refresh_lifetime_seconds,
    )


async def _chosen_account(
    deps: Deps, *, account: str, active: list[uuid.UUID], ctx: CallContext
) -> uuid.UUID | None:
    """The account a token is for: the one asked for (by id or slug) or the only one."""
    if not account.strip():
        return active[0] if len(active) == 1 else None
    try:
        wanted: uuid.UUID | None = uuid.UUID(account.strip())
    except ValueError:
        wanted = await deps.tenants.account_id_of(
            account.strip(), correlation_id=ctx.correlation_id
        )
    if wanted is None or wanted not in active:
        raise NotAMember()
    return wanted


async def issue_token(
    deps: Deps,
    *,
    email: str,
    password: str,
    account: str = "",
    source_address: str = "",
) -> IssuedToken:
    """A signed access token and a refresh token, or an error that never says which part was
    wrong. Five failures in a row lock the email for a minute, doubling up to an hour."""
    store, passwords = deps.store, deps.passwords
    email = email.strip()
    if not email or not password:
        raise InvalidInput("email and password are required")
    # Longer than any stored email: it cannot match, and the event must stay small.
    email = email[: MAX_EMAIL_LENGTH + 1]
    anonymous = _anonymous(source_address)
    async with store.transaction(Scope.nothing()) as uow:
        locked_for = (await uow.repos.throttle.state(email)).locked_for(datetime.now(UTC))
        found = await uow.repos.users.credentials(email) if not locked_for else None
    if locked_for:
        async with store.transaction(Scope.nothing()) as uow:
            await uow.publish(builders.login_failed(email, "locked", ctx=anonymous))
        raise LoginLocked(locked_for)

    user, reason, new_hash = await _check_password(passwords, found, password)
    active: list[uuid.UUID] = []
    if not reason:
        assert user is not None
        async with store.transaction(Scope.nothing()) as uow:
            memberships = await uow.repos.memberships.all_of(user.id)
        active = [m.account_id for m in memberships if m.status.value == "active"]
        if memberships and not active:
            reason = "deactivated"

    if reason:
        await _record_failure(store, email, reason, anonymous)
        if reason == "deactivated":
            raise UserDeactivated()
        raise InvalidCredentials()
    assert user is not None
    ctx = _anonymous(source_address, str(user.id))
    account_id = await _chosen_account(deps, account=account, active=active, ctx=ctx)
    for member_of in active:
        await _apply_rules(deps, user, member_of, ctx)
    await deps.signer.current(store)
    async with store.transaction(Scope.nothing()) as uow:
        if new_hash is not None:
            await uow.repos.users.set_password_hash(user.id, new_hash)
        await uow.repos.throttle.clear(email)
        refresh = await _new_refresh_token(uow, deps, user_id=user.id, account_id=account_id)
        await uow.publish(builders.login_succeeded(user.id, ctx=ctx))
    return _with_refresh(deps.signer.issue(user.id, account_id), refresh, deps)


async def _check_password(
    passwords: Passwords, found: tuple[User, str] | None, password: str
) -> tuple[User | None, str, str | None]:
    """(user, failure reason or '', a new hash when the stored one needs upgrading)."""
    if found is None:
        await passwords.verify_nobody(password)
        return None, "unknown_email", None
    user, password_hash = found
    if not await passwords.verify(password_hash, password):
        return user, "wrong_password", None
    if not user.active:
        return user, "deactivated", None
    if passwords.needs_rehash(password_hash):
        return user, "", await passwords.hash(password)
    return user, "", None


async def _record_failure(store: IdentityStore, email: str, reason: str, ctx: CallContext) -> None:
    """Count the failure against the email (known or not) and lock it after too many."""
    now = datetime.now(UTC)
    async with store.transaction(Scope.nothing()) as uow:
        events = [builders.login_failed(email, reason, ctx=ctx)]
        if reason in ("unknown_email", "wrong_password"):
            state = await uow.repos.throttle.state(email, lock=True)
            after, lock = throttling.after_failure(state, now)
            await uow.repos.throttle.save(email, after)
            if lock is not None:
                events.append(
                    builders.login_locked(
                        email,
                        throttling.FAILURES_BEFORE_LOCK,
                        int(lock.total_seconds()),
                        ctx=ctx,
                    )
                )
        await uow.publish(*events)


async def _apply_rules(deps: Deps, user: User, account_id: uuid.UUID, ctx: CallContext) -> None:
    scoped = ctx.for_account(account_id)
    async with deps.store.transaction(Scope.account(account_id)) as uow:
        await apply_domain_rules(
            uow, account_id=account_id, user=user, catalogue=deps.catalogue, ctx=scoped
        )


async def refresh_token(deps: Deps, *, refresh_token: str, source_address: str = "") -> IssuedToken:
    """Rotate: the token is used up and its successor returned; a reused one revokes its family."""
    if not refresh_token.strip():
        raise InvalidInput("refresh_token is required")
    presented = token_hash(refresh_token.strip())
    now = datetime.now(UTC)
    await deps.signer.current(deps.store)
    async with deps.store.transaction(Scope.nothing()) as uow:
        stored = await uow.repos.refresh_tokens.locked(presented)
        if stored is None:
            raise InvalidRefreshToken()
        ctx = _anonymous(source_address, str(stored.user_id))
        if stored.used_at is not None and stored.revoked_at is None:
            # Someone replays a token already exchanged: one of the two holders is not the user.
            await uow.repos.refresh_tokens.revoke_family(stored.family_id)
            await uow.publish(
                builders.refresh_token_reused(stored.user_id, stored.family_id, ctx=ctx)
            )
            refused = True
        elif not stored.usable(now):
            raise InvalidRefreshToken()
        else:
            user = await uow.repos.users.by_id(stored.user_id)
            active = await uow.repos.memberships.accounts_of(stored.user_id)
            refused = (
                user is None
                or not user.active
                or (stored.account_id is not None and stored.account_id not in active)
            )
            if refused:
                await uow.repos.refresh_tokens.revoke_family(stored.family_id)
            else:
                await uow.repos.refresh_tokens.mark_used(stored.id)
                successor = await _new_refresh_token(
                    uow,
                    deps,
                    user_id=stored.user_id,
                    account_id=stored.account_id,
                    family_id=stored.family_id,
                )
    if refused:
        raise InvalidRefreshToken()
    issued = deps.signer.issue(stored.user_id, stored.account_id)
    return _with_refresh(issued, successor, deps)


async def revoke_token(deps: Deps, *, refresh_token: str) -> None:
    """Revoke the token's family; unknown tokens are ignored (RFC 7009)."""
    if not refresh_token.strip():
        raise InvalidInput("refresh_token is required")
    async with deps.store.transaction(Scope.nothing()) as uow:
        stored = await uow.repos.refresh_tokens.locked(token_hash(refresh_token.strip()))
        if stored is not None:
            await uow.repos.refresh_tokens.revoke_family(stored.family_id)


async def switch_account(deps: Deps, *, ctx: CallContext, account_id: str) -> IssuedToken:
    """A new token pair for another account of the calling user (about itself only)."""
    if ctx.principal_kind != "user":
        raise Forbidden("only a signed-in user can switch accounts")
    if not account_id.strip():
        raise InvalidInput("account_id is required")
    try:
        user_id = uuid.UUID(ctx.principal_id)
    except ValueError:
        raise Forbidden("only a signed-in user can switch accounts") from None
    async with deps.store.transaction(Scope.nothing()) as uow:
        user = await uow.repos.users.by_id(user_id)
        active = await uow.repos.memberships.accounts_of(user_id)
    if user is None or not user.active:
        raise UserDeactivated()
    wanted = await _chosen_account(deps, account=account_id, active=active, ctx=ctx)
    assert wanted is not None
    await _apply_rules(deps, user, wanted, ctx)
    await deps.signer.current(deps.store)
    async with deps.store.transaction(Scope.nothing()) as uow:
        refresh = await _new_refresh_token(uow, deps, user_id=user_id, account_id=wanted)
    return _with_refresh(deps.signer.issue(user_id, wanted), refresh, deps)


async def public_keys(*, store: IdentityStore, signer: TokenSigner) -> list[PublicKey]:
    """The active key and recently retired ones that may still verify unexpired tokens."""
    retired_after = datetime.now(UTC) - timedelta(seconds=signer.retired_key_margin_seconds)
    async with store.transaction(Scope.nothing()) as uow:
        return await uow.repos.signing_keys.published(retired_after=retired_after)


async def rotate_signing_key(deps: Deps, *, ctx: CallContext) -> tuple[str, str]:
    return await deps.signer.rotate(deps.store, ctx)
