"""Resolve: a principal's permissions and tenant scope in one account (asked by the gateway)."""

import uuid

from services.identity.domain import resolution as rules
from services.identity.domain.resolution import Resolution
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError as error:
        raise InvalidInput(f"{field} must be a UUID") from error


async def resolve(
    *, store: IdentityStore, ctx: CallContext, principal_id: str, account_id: str
) -> Resolution:
    """Without an account, default to the principal's only one; otherwise report ambiguity."""
    if not principal_id.strip():
        raise InvalidInput("principal_id is required")
    user_id = _uuid(principal_id, "principal_id")
    wanted = _uuid(account_id, "account_id") if account_id.strip() else None

    async with store.transaction(Scope.nothing()) as uow:
        user = await uow.repos.users.by_id(user_id)
        accounts = await uow.repos.memberships.accounts_of(user_id)
    if wanted is None:
        if len(accounts) != 1:
            return rules.ambiguous(len(accounts))
        wanted = accounts[0]
    if user is None or not user.active:
        # Unknown or deactivated users hold nothing, whatever their grants say.
        return rules.resolution(
            account_id=wanted, member=False, granted=(), membership_count=len(accounts)
        )

    scope = Scope(account_id=wanted, principal_id=ctx.principal_id)
    async with store.transaction(scope) as uow:
        member = await uow.repos.memberships.is_member(wanted, user_id)
        granted = await uow.repos.roles.granted_permissions(wanted, user_id) if member else []
    return rules.resolution(
        account_id=wanted, member=member, granted=granted, membership_count=len(accounts)
    )
