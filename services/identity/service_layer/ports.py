"""What identity's use cases need from outside: tenancy's tenant tree, a DNS TXT lookup."""

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from services.identity.domain.leases import Fence, Lease
from services.runtime.errors import InvalidInput, PreconditionFailed


class TenancyUnavailable(PreconditionFailed):
    """Tenancy could not answer; the caller is refused rather than answered wrongly."""


class UnknownScope(InvalidInput):
    """A tenant group or tenant that is not in the account."""


class TenantDirectory(Protocol):
    async def expand(
        self,
        account_id: uuid.UUID,
        *,
        group_ids: Collection[uuid.UUID],
        tenant_ids: Collection[uuid.UUID],
        correlation_id: str | None = None,
    ) -> frozenset[uuid.UUID]:
        """Every tenant under the groups (whole subtrees) plus the tenants, in the account.

        Raises UnknownScope for ids not in the account, TenancyUnavailable when tenancy fails.
        """
        ...

    async def account_id_of(
        self, account: str, *, correlation_id: str | None = None
    ) -> uuid.UUID | None:
        """The id of the account with this id or slug; None when there is none."""
        ...


class DomainVerifier(Protocol):
    async def txt_records(self, name: str) -> list[str]:
        """The TXT records published at `name` (empty when none or when DNS cannot be asked)."""
        ...


class NoDns:
    """The verifier when no resolver is configured: finds nothing, so only operators verify."""

    async def txt_records(self, name: str) -> list[str]:
        return []


class FenceNotifier(Protocol):
    """Tells lease holders of an authorization change (over NATS, in production)."""

    async def tell(self, holders: Sequence[Lease], fence: Fence) -> list[uuid.UUID]:
        """Send `fence` to every holder; the lease ids of those that did not acknowledge it."""
        ...

    async def withdraw(self, holders: Sequence[Lease], fence: Fence) -> None:
        """Best effort: the change of `fence` rolled back; its holders may stop waiting for it."""
        ...
