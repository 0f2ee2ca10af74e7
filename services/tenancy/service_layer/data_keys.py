"""Handing an account's data key, unwrapped, to the services that encrypt its data."""

from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import InvalidInput, NotFound
from services.tenancy.domain.data_keys import DataKey, wrapping_purpose
from services.tenancy.service_layer.ports import KeyWrapping, Transactions


async def get_data_key(
    transactions: Transactions, keys: KeyWrapping, *, ctx: CallContext, version: int | None
) -> DataKey:
    """The caller's account's key: the given version, or the current one when None."""
    account_id = ctx.require_account()
    if version is not None and version < 1:
        raise InvalidInput("version must be positive (or empty for the current key)")
    async with transactions.begin(Scope.of(ctx), ctx) as uow:
        stored = await uow.data_keys.get(account_id, version)
    if stored is None:
        wanted = "current data key" if version is None else f"data key version {version}"
        raise NotFound(f"{wanted} not found")
    key = keys.unwrap(stored.wrapped_key, purpose=wrapping_purpose(account_id, stored.version))
    return DataKey(version=stored.version, key=key)
