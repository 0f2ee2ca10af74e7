"""A tree of 10,000 groups and 10,000 tenants in one account: lists page and scopes expand right.

The setup writes the tree with two set-based INSERTs (as the app role, under row-level
security); the service then only reads and moves it. No timings here: bench/ measures speed.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from canopy.tenancy.v1 import tenancy_pb2 as pb
from canopy.tenancy.v1.tenancy_pb2_grpc import TenancyServiceStub
from services.runtime.db import Database, Scope
from services.runtime.ids import new_id
from services.tenancy.adapters.db.paths import path_of
from services.tenancy.config import TenancyConfig
from services.tenancy.tests.helpers import Calls, unique_slug

REGIONS = 99
SITES_PER_REGION = 100  # 1 root + 99 regions + 9,900 sites = 10,000 groups

INSERT_GROUPS = text(
    "INSERT INTO tenancy.tenant_groups (id, account_id, parent_id, type, name, path, depth)"
    " SELECT g.id, :account_id, g.parent_id, g.type, g.name, g.path, g.depth"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:parent_ids AS uuid[]), CAST(:types AS text[]),"
    "  CAST(:names AS text[]), CAST(:paths AS text[]), CAST(:depths AS int[]))"
    "  AS g(id, parent_id, type, name, path, depth)"
)
INSERT_TENANTS = text(
    "INSERT INTO tenancy.tenants (id, account_id, name, group_id, group_path)"
    " SELECT t.id, :account_id, t.name, t.group_id, t.group_path"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:names AS text[]), CAST(:group_ids AS uuid[]),"
    "  CAST(:group_paths AS text[])) AS t(id, name, group_id, group_path)"
)


@dataclass
class BigTree:
    account_id: str
    root: uuid.UUID
    regions: list[uuid.UUID]
    # Tenant ids by the region they are under (its own tenant and its sites' tenants).
    tenants_by_region: dict[uuid.UUID, set[str]]
    root_tenant: str

    @property
    def all_tenants(self) -> set[str]:
        return {self.root_tenant}.union(*self.tenants_by_region.values())


@pytest.fixture(scope="module")
async def big_tree(
    stub: TenancyServiceStub, calls: Calls, tenancy_config: TenancyConfig
) -> AsyncIterator[BigTree]:
    account = await stub.CreateAccount(
        pb.CreateAccountRequest(name="Big Dealer Group", slug=unique_slug("big")),
        metadata=calls.operator(),
    )
    account_id = uuid.UUID(account.id)
    groups: list[tuple[uuid.UUID, uuid.UUID | None, str, str, tuple[uuid.UUID, ...]]] = []
    tenants: list[tuple[uuid.UUID, str, uuid.UUID, tuple[uuid.UUID, ...]]] = []
    root = new_id()
    groups.append((root, None, "group", "All", (root,)))
    tenants.append((new_id(), "HQ", root, (root,)))
    regions, by_region = [], {}
    for r in range(REGIONS):
        region = new_id()
        regions.append(region)
        lineage = (root, region)
        groups.append((region, root, "region", f"Region {r:02d}", lineage))
        placed = [(new_id(), f"Region {r:02d} office", region, lineage)]
        for s in range(SITES_PER_REGION):
            site = new_id()
            site_lineage = (*lineage, site)
            groups.append((site, region, "site", f"Site {r:02d}-{s:03d}", site_lineage))
            placed.append((new_id(), f"Dealer {r:02d}-{s:03d}", site, site_lineage))
        tenants += placed
        by_region[region] = {str(t[0]) for t in placed}
    assert len(groups) == 10_000 and len(tenants) == 10_000

    db = Database(tenancy_config.app_url("tenancy"), pool_size=1)
    try:
        async with db.transaction(Scope.account(account_id)) as session:
            await session.execute(
                INSERT_GROUPS,
                {
                    "account_id": account_id,
                    "ids": [g[0] for g in groups],
                    "parent_ids": [g[1] for g in groups],
                    "types": [g[2] for g in groups],
                    "names": [g[3] for g in groups],
                    "paths": [path_of(g[4]) for g in groups],
                    "depths": [len(g[4]) for g in groups],
                },
            )
            await session.execute(
                INSERT_TENANTS,
                {
                    "account_id": account_id,
                    "ids": [t[0] for t in tenants],
                    "names": [t[1] for t in tenants],
                    "group_ids": [t[2] for t in tenants],
                    "group_paths": [path_of(t[3]) for t in tenants],
                },
            )
    finally:
        await db.dispose()
    # What autovacuum would soon do; only the owner may (the app role's ANALYZE is skipped).
    owner = Database(tenancy_config.owner_url("tenancy"), pool_size=1)
    try:
        async with owner.engine.connect() as conn:
            await conn.execute(text("ANALYZE tenancy.tenant_groups, tenancy.tenants"))
            await conn.commit()
    finally:
        await owner.dispose()
    yield BigTree(account.id, root, regions, by_region, str(tenants[0][0]))


async def all_pages(call, request, field: str) -> list:  # type: ignore[no-untyped-def]
    items, token = [], ""
    while True:
        request.page_token = token
        page = await call(request)
        items += list(getattr(page, field))
        if not (token := page.next_page_token):
            return items


async def test_children_of_a_big_tree_list_in_pages(
    stub: TenancyServiceStub, calls: Calls, big_tree: BigTree
) -> None:
    admin = calls.member(big_tree.account_id)

    async def list_groups(request: pb.ListTenantGroupsRequest) -> pb.ListTenantGroupsResponse:
        return await stub.ListTenantGroups(request, metadata=admin)

    roots = await all_pages(list_groups, pb.ListTenantGroupsRequest(), "groups")
    assert [g.name for g in roots] == ["All"]
    regions = await all_pages(
        list_groups,
        pb.ListTenantGroupsRequest(parent_id=str(big_tree.root), page_size=40),
        "groups",
    )
    assert [g.name for g in regions] == [f"Region {r:02d}" for r in range(REGIONS)]
    first_page = await list_groups(pb.ListTenantGroupsRequest(parent_id=str(big_tree.regions[7])))
    assert len(first_page.groups) == 50 and first_page.next_page_token
    sites = await all_pages(
        list_groups,
        pb.ListTenantGroupsRequest(parent_id=str(big_tree.regions[7]), page_size=30),
        "groups",
    )
    assert [g.name for g in sites] == [f"Site 07-{s:03d}" for s in range(SITES_PER_REGION)]
    assert {g.depth for g in sites} == {3}

    site = await stub.GetTenantGroup(
        pb.GetTenantGroupRequest(group_id=sites[42].id), metadata=admin
    )
    assert [a.name for a in site.ancestors] == ["All", "Region 07"]

    async def list_tenants(request: pb.ListTenantGroupTenantsRequest) -> pb.ListTenantsResponse:
        return await stub.ListTenantGroupTenants(request, metadata=admin)

    everyone = await all_pages(
        list_tenants,
        pb.ListTenantGroupTenantsRequest(
            group_id=str(big_tree.root), recursive=True, page_size=500
        ),
        "tenants",
    )
    assert len(everyone) == 10_000
    assert {t.id for t in everyone} == big_tree.all_tenants
    only_root = await list_tenants(pb.ListTenantGroupTenantsRequest(group_id=str(big_tree.root)))
    assert [t.name for t in only_root.tenants] == ["HQ"]


async def test_expanding_the_root_and_moving_a_region_of_a_big_tree(
    stub: TenancyServiceStub, calls: Calls, big_tree: BigTree
) -> None:
    admin = calls.member(big_tree.account_id)

    async def expand(*group_ids: uuid.UUID) -> set[str]:
        response = await stub.ExpandTenantScope(
            pb.ExpandTenantScopeRequest(group_ids=[str(g) for g in group_ids]), metadata=admin
        )
        assert len(response.tenant_ids) == len(set(response.tenant_ids))
        return set(response.tenant_ids)

    assert await expand(big_tree.root) == big_tree.all_tenants
    moving, target = big_tree.regions[3], big_tree.regions[50]
    assert await expand(moving) == big_tree.tenants_by_region[moving]
    assert len(await expand(*big_tree.regions)) == 10_000 - 1

    moved = await stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=str(moving), parent_id=str(target)), metadata=admin
    )
    assert moved.depth == 3
    both = big_tree.tenants_by_region[moving] | big_tree.tenants_by_region[target]
    assert len(both) == 202
    assert await expand(target) == both
    assert await expand(moving) == big_tree.tenants_by_region[moving]
    assert await expand(big_tree.root) == big_tree.all_tenants
    some_site = await stub.ListTenantGroups(
        pb.ListTenantGroupsRequest(parent_id=str(moving), page_size=1), metadata=admin
    )
    site = await stub.GetTenantGroup(
        pb.GetTenantGroupRequest(group_id=some_site.groups[0].id), metadata=admin
    )
    assert [a.name for a in site.ancestors] == ["All", "Region 50", "Region 03"]
    assert site.depth == 4
