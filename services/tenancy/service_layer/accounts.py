"""Account lifecycle: create (with its first data key), look up, suspend and reactivate."""

import uuid

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput, NotFound
from services.runtime.ids import new_id
from services.tenancy.domain.data_keys import FIRST_VERSION, new_key_material, wrapping_purpose
from services.tenancy.domain.model import Account
from services.tenancy.service_layer.ports import KeyWrapping, Transactions


def _account_scope(account_id: uuid.UUID, ctx: CallContext) -> Scope:
    """Operators act on an account named in the request, not one in their context."""
    return Scope(account_id, None, ctx.principal_id)


def _refuse_other_account(ctx: CallContext, account_id: uuid.UUID, ref: str) -> None:
    if ctx.account_id is not None and ctx.account_id != account_id:
        raise NotFound(f"account {ref} not found")


async def create_account(
    transactions: Transactions,
    keys: KeyWrapping,
    *,
    ctx: CallContext,
    name: str,
    slug: str,
    tier: str,
) -> Account:
    account = Account.open(id=new_id(), name=name, slug=slug.strip(), tier=tier.strip())
    wrapped_key = keys.wrap(new_key_material(), purpose=wrapping_purpose(account.id, FIRST_VERSION))
    async with transactions.begin(_account_scope(account.id, ctx), ctx) as uow:
        await uow.accounts.add(account)
        await uow.data_keys.add(
            account_id=account.id, version=FIRST_VERSION, wrapped_key=wrapped_key
        )
        await uow.emit(account.pull_events())
    return account


async def get_account(transactions: Transactions, *, ctx: CallContext, ref: str) -> Account:
    """By id or slug; a caller inside an account only ever finds that account."""
    wanted = ref.strip().lower()
    if not wanted:
        raise InvalidInput("account (an id or a slug) is required")
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        account = await uow.accounts.find(wanted)
    if account is None:
        raise NotFound(f"account {ref} not found")
    _refuse_other_account(ctx, account.id, ref)
    return account


async def suspend_account(
    transactions: Transactions, *, ctx: CallContext, account_id: uuid.UUID, reason: str
) -> Account:
    _refuse_other_account(ctx, account_id, str(account_id))
    async with transactions.begin(_account_scope(account_id, ctx), ctx) as uow:
        account = await uow.accounts.get_for_update(account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found")
        account.suspend(reason)
        await uow.accounts.save_status(account)
        await uow.emit(account.pull_events())
    return account


async def reactivate_account(
    transactions: Transactions, *, ctx: CallContext, account_id: uuid.UUID
) -> Account:
    _refuse_other_account(ctx, account_id, str(account_id))
    async with transactions.begin(_account_scope(account_id, ctx), ctx) as uow:
        account = await uow.accounts.get_for_update(account_id)
        if account is None:
            raise NotFound(f"account {account_id} not found")
        account.reactivate()
        await uow.accounts.save_status(account)
        await uow.emit(account.pull_events())
    return account
