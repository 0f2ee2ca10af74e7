"""Stand-ins for identity's ports: tenancy's tenant tree, a DNS TXT lookup, fence holders."""

import uuid
from collections.abc import Collection, Sequence

from services.identity.domain.leases import Fence, Lease
from services.identity.service_layer.ports import UnknownScope


class FakeTenantDirectory:
    """Per account, tenant groups (each with the tenants of its whole subtree) and tenants."""

    def __init__(self) -> None:
        self.groups: dict[uuid.UUID, dict[uuid.UUID, frozenset[uuid.UUID]]] = {}
        self.tenants: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.slugs: dict[str, uuid.UUID] = {}
        self.calls = 0

    def add_group(self, account_id: uuid.UUID, *tenants: uuid.UUID) -> uuid.UUID:
        group = uuid.uuid4()
        self.groups.setdefault(account_id, {})[group] = frozenset(tenants)
        self.tenants.setdefault(account_id, set()).update(tenants)
        return group

    def add_tenant(self, account_id: uuid.UUID) -> uuid.UUID:
        tenant = uuid.uuid4()
        self.tenants.setdefault(account_id, set()).add(tenant)
        return tenant

    async def expand(
        self,
        account_id: uuid.UUID,
        *,
        group_ids: Collection[uuid.UUID],
        tenant_ids: Collection[uuid.UUID],
        correlation_id: str | None = None,
    ) -> frozenset[uuid.UUID]:
        self.calls += 1
        groups = self.groups.get(account_id, {})
        unknown = [g for g in group_ids if g not in groups]
        if unknown:
            raise UnknownScope("no such tenant group in this account")
        known = self.tenants.get(account_id, set())
        found = {t for t in tenant_ids if t in known}
        for group in group_ids:
            found |= groups[group]
        return frozenset(found)

    async def account_id_of(
        self, account: str, *, correlation_id: str | None = None
    ) -> uuid.UUID | None:
        return self.slugs.get(account)


class FakeDns:
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    async def txt_records(self, name: str) -> list[str]:
        return list(self.records.get(name, []))


class NobodyListens:
    """A FenceNotifier whose holders never answer (a store that no gateway leases from)."""

    async def tell(self, holders: Sequence[Lease], fence: Fence) -> list[uuid.UUID]:
        return [holder.lease_id for holder in holders]

    async def withdraw(self, holders: Sequence[Lease], fence: Fence) -> None:
        return None
