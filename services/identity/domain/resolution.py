"""What a principal may do in one account: the gateway's question, answered from grants."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Resolution:
    account_id: uuid.UUID | None
    member: bool
    permissions: frozenset[str] = frozenset()
    all_tenants: bool = False
    tenant_ids: frozenset[uuid.UUID] = frozenset()
    membership_count: int = 0


def ambiguous(membership_count: int) -> Resolution:
    """No account given and not exactly one to default to."""
    return Resolution(account_id=None, member=False, membership_count=membership_count)


def resolution(
    *,
    account_id: uuid.UUID,
    member: bool,
    granted: Iterable[Iterable[str]],
    membership_count: int,
) -> Resolution:
    """The union of the granted roles' permissions; a non-member holds nothing.

    Only account-scope grants exist so far, so a member sees every tenant of the account.
    """
    if not member:
        return Resolution(account_id=account_id, member=False, membership_count=membership_count)
    permissions = frozenset(p for role in granted for p in role)
    return Resolution(
        account_id=account_id,
        member=True,
        permissions=permissions,
        all_tenants=True,
        membership_count=membership_count,
    )
