"""Sign-in with email and password, and the public keys that verify the tokens it issues."""

from datetime import UTC, datetime, timedelta

from services.identity.adapters.events import builders
from services.identity.domain.errors import InvalidCredentials, UserDeactivated
from services.identity.domain.tokens import IssuedToken, PublicKey
from services.identity.domain.users import MAX_EMAIL_LENGTH
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.signing import TokenSigner
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput
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


async def issue_token(
    *,
    store: IdentityStore,
    passwords: Passwords,
    signer: TokenSigner,
    email: str,
    password: str,
    source_address: str = "",
) -> IssuedToken:
    """A signed access token, or InvalidCredentials that never says which part was wrong."""
    email = email.strip()
    if not email or not password:
        raise InvalidInput("email and password are required")
    # Longer than any stored email: it cannot match, and the event must stay small.
    email = email[: MAX_EMAIL_LENGTH + 1]
    async with store.transaction(Scope.nothing()) as uow:
        found = await uow.repos.users.credentials(email)

    user = None
    reason = ""
    new_hash = None
    if found is None:
        await passwords.verify_nobody(password)
        reason = "unknown_email"
    else:
        user, password_hash = found
        if not await passwords.verify(password_hash, password):
            reason = "wrong_password"
        elif not user.active:
            reason = "deactivated"
        elif passwords.needs_rehash(password_hash):
            new_hash = await passwords.hash(password)

    async with store.transaction(Scope.nothing()) as uow:
        if user is None or reason:
            ctx = _anonymous(source_address)
            await uow.publish(builders.login_failed(email, reason, ctx=ctx))
        else:
            ctx = _anonymous(source_address, str(user.id))
            if new_hash is not None:
                await uow.repos.users.set_password_hash(user.id, new_hash)
            await uow.publish(builders.login_succeeded(user.id, ctx=ctx))
    if reason == "deactivated":
        raise UserDeactivated()
    if user is None or reason:
        raise InvalidCredentials()
    return signer.issue(user.id)


async def public_keys(*, store: IdentityStore, signer: TokenSigner) -> list[PublicKey]:
    """The active key and recently retired ones that may still verify unexpired tokens."""
    retired_after = datetime.now(UTC) - timedelta(seconds=signer.lifetime_seconds)
    async with store.transaction(Scope.nothing()) as uow:
        return await uow.repos.signing_keys.published(retired_after=retired_after)
