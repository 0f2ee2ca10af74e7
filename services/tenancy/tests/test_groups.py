"""The tenant tree over gRPC: groups, moves, tenants in groups, locations, scopes and isolation."""

import uuid

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from canopy.tenancy.v1 import tenancy_pb2 as pb
from canopy.tenancy.v1.tenancy_pb2_grpc import TenancyServiceStub
from services.runtime.db import Scope
from services.runtime.events import unpack
from services.tenancy.config import TenancyConfig
from services.tenancy.tests.helpers import Calls, Published, unique_slug

Metadata = tuple[tuple[str, str], ...]
READ_ONLY = ("tenancy.tenants:read",)
READ_WRITE = ("tenancy.tenants:read", "tenancy.tenants:write")


async def make_group(
    stub: TenancyServiceStub,
    metadata: Metadata,
    name: str,
    parent: pb.TenantGroup | None = None,
    type: str = "group",
) -> pb.TenantGroup:
    request = pb.CreateTenantGroupRequest(
        type=type, name=name, parent_id=parent.id if parent else ""
    )
    return await stub.CreateTenantGroup(request, metadata=metadata)


async def make_tenant(
    stub: TenancyServiceStub, metadata: Metadata, name: str, group: pb.TenantGroup | None = None
) -> pb.Tenant:
    tenant = await stub.CreateTenant(pb.CreateTenantRequest(name=name), metadata=metadata)
    if group is None:
        return tenant
    return await stub.MoveTenant(
        pb.MoveTenantRequest(tenant_id=tenant.id, group_id=group.id), metadata=metadata
    )


async def children(
    stub: TenancyServiceStub, metadata: Metadata, parent: pb.TenantGroup | None, page_size: int = 0
) -> list[str]:
    names, token = [], ""
    while True:
        page = await stub.ListTenantGroups(
            pb.ListTenantGroupsRequest(
                parent_id=parent.id if parent else "", page_size=page_size, page_token=token
            ),
            metadata=metadata,
        )
        names += [g.name for g in page.groups]
        if not (token := page.next_page_token):
            return names


async def tenants_under(
    stub: TenancyServiceStub, metadata: Metadata, group: pb.TenantGroup, *, recursive: bool
) -> list[str]:
    names, token = [], ""
    while True:
        page = await stub.ListTenantGroupTenants(
            pb.ListTenantGroupTenantsRequest(
                group_id=group.id, recursive=recursive, page_size=2, page_token=token
            ),
            metadata=metadata,
        )
        names += [t.name for t in page.tenants]
        if not (token := page.next_page_token):
            return sorted(names)


async def expand(
    stub: TenancyServiceStub,
    metadata: Metadata,
    groups: list[pb.TenantGroup] = [],  # noqa: B006 - never mutated
    tenants: list[pb.Tenant] = [],  # noqa: B006
) -> set[str]:
    response = await stub.ExpandTenantScope(
        pb.ExpandTenantScopeRequest(
            group_ids=[g.id for g in groups], tenant_ids=[t.id for t in tenants]
        ),
        metadata=metadata,
    )
    return set(response.tenant_ids)


async def refused(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call  # type: ignore[misc]
    return error.value.code()


async def test_a_three_level_tree_is_built_listed_in_pages_and_fetched_with_its_ancestors(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    event = await published.wait_for("canopy.tenancy.group.created", account.id)
    assert unpack(event, pb.TenantGroupCreated).name == "Europe"
    north = await make_group(stub, admin, "North", europe)
    south = await make_group(stub, admin, "South", europe)
    hamburg = await make_group(stub, admin, "Hamburg", north, type="site")
    kiel = await make_group(stub, admin, "Kiel", north, type="site")
    await make_group(stub, admin, "Americas", type="region")

    assert (hamburg.parent_id, hamburg.depth, hamburg.type) == (north.id, 3, "site")
    untyped = await stub.CreateTenantGroup(
        pb.CreateTenantGroupRequest(name="Misc", parent_id=europe.id), metadata=admin
    )
    assert untyped.type == "group"
    assert [a.name for a in hamburg.ancestors] == ["Europe", "North"]
    assert await children(stub, admin, None, page_size=1) == ["Europe", "Americas"]
    assert await children(stub, admin, europe, page_size=1) == ["North", "South", "Misc"]
    assert await children(stub, admin, hamburg) == []

    got = await stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=kiel.id), metadata=admin)
    assert [(a.id, a.type) for a in got.ancestors] == [(europe.id, "region"), (north.id, "group")]
    assert got.name == "Kiel" and got.depth == 3

    await make_tenant(stub, admin, "Harbour", hamburg)
    await make_tenant(stub, admin, "Docks", hamburg)
    await make_tenant(stub, admin, "Fjord", kiel)
    await make_tenant(stub, admin, "Mill", south)
    await make_tenant(stub, admin, "Loose")
    assert await tenants_under(stub, admin, north, recursive=False) == []
    assert await tenants_under(stub, admin, hamburg, recursive=False) == ["Docks", "Harbour"]
    assert await tenants_under(stub, admin, europe, recursive=True) == [
        "Docks",
        "Fjord",
        "Harbour",
        "Mill",
    ]
    scope = await expand(stub, calls.member(account.id, READ_ONLY), [north, south])
    assert len(scope) == 4


async def test_moving_a_subtree_rewrites_its_paths_and_the_scopes_it_expands_to(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    americas = await make_group(stub, admin, "Americas", type="region")
    north = await make_group(stub, admin, "North", europe)
    hamburg = await make_group(stub, admin, "Hamburg", north, type="site")
    harbour = await make_tenant(stub, admin, "Harbour", hamburg)
    fjord = await make_tenant(stub, admin, "Fjord", north)
    assert await expand(stub, admin, [europe]) == {harbour.id, fjord.id}
    assert await expand(stub, admin, [americas]) == set()

    moved = await stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=north.id, parent_id=americas.id, name="Boreal"),
        metadata=admin,
    )
    assert (moved.parent_id, moved.name, moved.depth) == (americas.id, "Boreal", 2)
    assert [a.name for a in moved.ancestors] == ["Americas"]
    event = unpack(
        await published.wait_for("canopy.tenancy.group.moved", account.id), pb.TenantGroupMoved
    )
    assert (event.group_id, event.old_parent_id, event.new_parent_id) == (
        north.id,
        europe.id,
        americas.id,
    )
    renamed = await published.wait_for("canopy.tenancy.group.renamed", account.id)
    assert unpack(renamed, pb.TenantGroupRenamed).old_name == "North"

    site = await stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=hamburg.id), metadata=admin)
    assert [a.name for a in site.ancestors] == ["Americas", "Boreal"]
    assert await expand(stub, admin, [europe]) == set()
    assert await expand(stub, admin, [americas]) == {harbour.id, fjord.id}
    assert await tenants_under(stub, admin, americas, recursive=True) == ["Fjord", "Harbour"]
    assert await children(stub, admin, europe) == []

    # To the root, and a group created under the moved subtree gets the new path.
    await stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=north.id, parent_id=""), metadata=admin
    )
    quay = await make_group(stub, admin, "Quay", hamburg, type="site")
    assert [a.id for a in quay.ancestors] == [north.id, hamburg.id]
    assert await expand(stub, admin, [americas]) == set()
    assert await expand(stub, admin, [north]) == {harbour.id, fjord.id}


async def test_moves_into_a_cycle_or_past_the_depth_limit_are_refused(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account
) -> None:
    admin = calls.member(account.id)
    chain = [await make_group(stub, admin, "L1")]
    for level in range(2, 9):
        chain.append(await make_group(stub, admin, f"L{level}", chain[-1]))
    assert chain[-1].depth == 8
    too_deep = make_group(stub, admin, "L9", chain[-1])
    assert await refused(too_deep) == grpc.StatusCode.FAILED_PRECONDITION

    for target in (chain[0], chain[1], chain[5]):
        cycle = stub.UpdateTenantGroup(
            pb.UpdateTenantGroupRequest(group_id=chain[0].id, parent_id=target.id), metadata=admin
        )
        assert await refused(cycle) == grpc.StatusCode.INVALID_ARGUMENT

    # A two-level subtree fits under L6 (reaching 8) but not under L7 (reaching 9).
    top = await make_group(stub, admin, "Top")
    await make_group(stub, admin, "Leaf", top)
    deeper = stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=top.id, parent_id=chain[6].id), metadata=admin
    )
    assert await refused(deeper) == grpc.StatusCode.FAILED_PRECONDITION
    fits = await stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=top.id, parent_id=chain[5].id), metadata=admin
    )
    assert fits.depth == 7
    got = await stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=chain[0].id), metadata=admin)
    assert got.parent_id == "" and got.depth == 1

    unchanged = await stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=top.id), metadata=admin
    )
    assert (unchanged.name, unchanged.parent_id) == ("Top", chain[5].id)


async def test_names_are_unique_among_siblings_ignoring_case_until_deleted(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account
) -> None:
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    north = await make_group(stub, admin, "North", europe)
    assert await refused(make_group(stub, admin, "north", europe)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    assert await refused(make_group(stub, admin, "EUROPE")) == grpc.StatusCode.ALREADY_EXISTS
    root_north = await make_group(stub, admin, "North")  # another parent: free
    south = await make_group(stub, admin, "South", europe)
    rename = stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=south.id, name="NORTH"), metadata=admin
    )
    assert await refused(rename) == grpc.StatusCode.ALREADY_EXISTS
    move = stub.UpdateTenantGroup(
        pb.UpdateTenantGroupRequest(group_id=root_north.id, parent_id=europe.id), metadata=admin
    )
    assert await refused(move) == grpc.StatusCode.ALREADY_EXISTS
    assert await refused(make_group(stub, admin, "X", type="planet")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )

    await stub.DeleteTenantGroup(pb.DeleteTenantGroupRequest(group_id=north.id), metadata=admin)
    again = await make_group(stub, admin, "NORTH", europe)
    assert again.id != north.id


async def test_a_group_is_deleted_only_when_empty_or_recursively_with_its_subtree(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    north = await make_group(stub, admin, "North", europe)
    hamburg = await make_group(stub, admin, "Hamburg", north, type="site")
    harbour = await make_tenant(stub, admin, "Harbour", hamburg)
    mill = await make_tenant(stub, admin, "Mill", north)

    for group in (north, hamburg):
        attempt = stub.DeleteTenantGroup(
            pb.DeleteTenantGroupRequest(group_id=group.id), metadata=admin
        )
        assert await refused(attempt) == grpc.StatusCode.FAILED_PRECONDITION

    deleted = await stub.DeleteTenantGroup(
        pb.DeleteTenantGroupRequest(group_id=north.id, recursive=True), metadata=admin
    )
    assert (deleted.deleted_groups, deleted.moved_tenants, deleted.tenants_moved_to) == (
        2,
        2,
        europe.id,
    )
    event = await published.wait_for("canopy.tenancy.group.deleted", account.id)
    assert unpack(event, pb.TenantGroupDeleted).deleted_groups == 2
    for group in (north, hamburg):
        gone = stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=group.id), metadata=admin)
        assert await refused(gone) == grpc.StatusCode.NOT_FOUND
    assert await children(stub, admin, europe) == []
    assert await tenants_under(stub, admin, europe, recursive=False) == ["Harbour", "Mill"]
    assert await expand(stub, admin, [europe]) == {harbour.id, mill.id}
    assert await expand(stub, admin, [north, hamburg]) == set()

    # A root's tenants end up in no group.
    await stub.DeleteTenantGroup(
        pb.DeleteTenantGroupRequest(group_id=europe.id, recursive=True), metadata=admin
    )
    loose = await stub.GetTenant(pb.GetTenantRequest(tenant_id=harbour.id), metadata=admin)
    assert loose.group_id == ""


async def test_a_tenant_is_in_at_most_one_group_and_moves_between_them(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    north, south = await make_group(stub, admin, "North"), await make_group(stub, admin, "South")
    harbour = await make_tenant(stub, admin, "Harbour", north)
    assert harbour.group_id == north.id
    moved = await stub.MoveTenant(
        pb.MoveTenantRequest(tenant_id=harbour.id, group_id=south.id), metadata=admin
    )
    assert moved.group_id == south.id
    assert await tenants_under(stub, admin, north, recursive=True) == []
    assert await tenants_under(stub, admin, south, recursive=True) == ["Harbour"]
    await published.wait_for("canopy.tenancy.tenant.moved", account.id)
    event = await published.wait_for("canopy.tenancy.tenant.moved", account.id)
    payload = unpack(event, pb.TenantMoved)
    assert (event.tenant_id, payload.old_group_id, payload.new_group_id) == (
        harbour.id,
        north.id,
        south.id,
    )
    out = await stub.MoveTenant(pb.MoveTenantRequest(tenant_id=harbour.id), metadata=admin)
    assert out.group_id == ""
    listed = await stub.ListTenants(pb.ListTenantsRequest(), metadata=admin)
    assert [t.group_id for t in listed.tenants] == [""]
    unknown = stub.MoveTenant(
        pb.MoveTenantRequest(tenant_id=harbour.id, group_id=str(uuid.uuid4())), metadata=admin
    )
    assert await refused(unknown) == grpc.StatusCode.NOT_FOUND


async def test_a_tenants_location_is_set_read_replaced_and_removed(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    harbour = await make_tenant(stub, admin, "Harbour")
    missing = stub.GetTenantLocation(
        pb.GetTenantLocationRequest(tenant_id=harbour.id), metadata=admin
    )
    assert await refused(missing) == grpc.StatusCode.NOT_FOUND

    request = pb.SetTenantLocationRequest(
        tenant_id=harbour.id,
        address_lines=["Hafenstrasse 1", "Building B"],
        city="Hamburg",
        postal_code="20457",
        country="de",
        latitude=53.5436,
        longitude=9.9862,
    )
    made = await stub.SetTenantLocation(request, metadata=admin)
    assert (made.country, list(made.address_lines), made.latitude) == (
        "DE",
        ["Hafenstrasse 1", "Building B"],
        53.5436,
    )
    event = unpack(
        await published.wait_for("canopy.tenancy.location.changed", account.id),
        pb.TenantLocationChanged,
    )
    assert event.location.city == "Hamburg" and not event.removed

    replaced = await stub.SetTenantLocation(
        pb.SetTenantLocationRequest(tenant_id=harbour.id, city="Kiel", country="DE"),
        metadata=admin,
    )
    got = await stub.GetTenantLocation(
        pb.GetTenantLocationRequest(tenant_id=harbour.id), metadata=admin
    )
    assert got == replaced
    assert (got.city, list(got.address_lines), got.HasField("latitude")) == ("Kiel", [], False)
    assert got.created_at == made.created_at

    for bad in (
        pb.SetTenantLocationRequest(tenant_id=harbour.id, country="ZZ"),
        pb.SetTenantLocationRequest(tenant_id=harbour.id, country="DE", latitude=10),
    ):
        assert await refused(stub.SetTenantLocation(bad, metadata=admin)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )

    await stub.DeleteTenantLocation(
        pb.DeleteTenantLocationRequest(tenant_id=harbour.id), metadata=admin
    )
    removed = await published.wait_for("canopy.tenancy.location.changed", account.id)
    while unpack(removed, pb.TenantLocationChanged).removed is False:
        removed = await published.wait_for("canopy.tenancy.location.changed", account.id)
    again = stub.GetTenantLocation(
        pb.GetTenantLocationRequest(tenant_id=harbour.id), metadata=admin
    )
    assert await refused(again) == grpc.StatusCode.NOT_FOUND


async def test_another_accounts_groups_tenants_and_locations_are_not_found(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account
) -> None:
    first = calls.member(account.id)
    europe = await make_group(stub, first, "Europe", type="region")
    north = await make_group(stub, first, "North", europe)
    harbour = await make_tenant(stub, first, "Harbour", north)
    await stub.SetTenantLocation(
        pb.SetTenantLocationRequest(tenant_id=harbour.id, country="DE"), metadata=first
    )
    rival = await stub.CreateAccount(
        pb.CreateAccountRequest(name="Rival", slug=unique_slug("rival")), metadata=calls.operator()
    )
    second = calls.member(rival.id)
    own_group = await make_group(stub, second, "Own")
    own_tenant = await make_tenant(stub, second, "Own tenant")

    attempts = [
        stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=north.id), metadata=second),
        stub.ListTenantGroups(pb.ListTenantGroupsRequest(parent_id=europe.id), metadata=second),
        stub.ListTenantGroupTenants(
            pb.ListTenantGroupTenantsRequest(group_id=europe.id, recursive=True), metadata=second
        ),
        stub.UpdateTenantGroup(
            pb.UpdateTenantGroupRequest(group_id=north.id, name="Stolen"), metadata=second
        ),
        stub.UpdateTenantGroup(
            pb.UpdateTenantGroupRequest(group_id=own_group.id, parent_id=europe.id),
            metadata=second,
        ),
        stub.CreateTenantGroup(
            pb.CreateTenantGroupRequest(type="site", name="Inside", parent_id=north.id),
            metadata=second,
        ),
        stub.DeleteTenantGroup(
            pb.DeleteTenantGroupRequest(group_id=europe.id, recursive=True), metadata=second
        ),
        stub.MoveTenant(
            pb.MoveTenantRequest(tenant_id=own_tenant.id, group_id=north.id), metadata=second
        ),
        stub.MoveTenant(pb.MoveTenantRequest(tenant_id=harbour.id), metadata=second),
        stub.GetTenantLocation(pb.GetTenantLocationRequest(tenant_id=harbour.id), metadata=second),
        stub.SetTenantLocation(
            pb.SetTenantLocationRequest(tenant_id=harbour.id, country="FR"), metadata=second
        ),
        stub.DeleteTenantLocation(
            pb.DeleteTenantLocationRequest(tenant_id=harbour.id), metadata=second
        ),
    ]
    for attempt in attempts:
        assert await refused(attempt) == grpc.StatusCode.NOT_FOUND
    assert await children(stub, second, None) == ["Own"]
    assert await expand(stub, second, [europe, north], [harbour]) == set()
    # Nothing of the first account changed.
    got = await stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=north.id), metadata=first)
    assert got.name == "North" and got.parent_id == europe.id
    assert await expand(stub, first, [europe]) == {harbour.id}
    location = await stub.GetTenantLocation(
        pb.GetTenantLocationRequest(tenant_id=harbour.id), metadata=first
    )
    assert location.country == "DE"


async def test_a_caller_limited_to_some_tenants_sees_only_the_groups_on_their_paths(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account
) -> None:
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    americas = await make_group(stub, admin, "Americas", type="region")
    north = await make_group(stub, admin, "North", europe)
    south = await make_group(stub, admin, "South", europe)
    hamburg = await make_group(stub, admin, "Hamburg", north, type="site")
    kiel = await make_group(stub, admin, "Kiel", north, type="site")
    harbour = await make_tenant(stub, admin, "Harbour", hamburg)
    fjord = await make_tenant(stub, admin, "Fjord", kiel)
    mill = await make_tenant(stub, admin, "Mill", south)
    await make_tenant(stub, admin, "Prairie", americas)

    site = calls.member(account.id, READ_WRITE, tenant_ids=[harbour.id])
    assert await children(stub, site, None) == ["Europe"]
    assert await children(stub, site, europe) == ["North"]
    assert await children(stub, site, north) == ["Hamburg"]
    got = await stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=hamburg.id), metadata=site)
    assert [a.name for a in got.ancestors] == ["Europe", "North"]
    for hidden in (americas, south, kiel):
        attempt = stub.GetTenantGroup(pb.GetTenantGroupRequest(group_id=hidden.id), metadata=site)
        assert await refused(attempt) == grpc.StatusCode.NOT_FOUND
    assert await tenants_under(stub, site, europe, recursive=True) == ["Harbour"]
    assert await expand(stub, site, [europe], [mill]) == {harbour.id}
    assert await expand(stub, admin, [europe]) == {harbour.id, fjord.id, mill.id}

    # Its own tenant's location, yes; another's, no; the tree itself, never.
    await stub.SetTenantLocation(
        pb.SetTenantLocationRequest(tenant_id=harbour.id, country="DE"), metadata=site
    )
    other = stub.SetTenantLocation(
        pb.SetTenantLocationRequest(tenant_id=fjord.id, country="DE"), metadata=site
    )
    assert await refused(other) == grpc.StatusCode.NOT_FOUND
    for write in (
        make_group(stub, site, "Mine", hamburg),
        stub.UpdateTenantGroup(
            pb.UpdateTenantGroupRequest(group_id=hamburg.id, name="Mine"), metadata=site
        ),
        stub.DeleteTenantGroup(pb.DeleteTenantGroupRequest(group_id=hamburg.id), metadata=site),
        stub.MoveTenant(pb.MoveTenantRequest(tenant_id=harbour.id), metadata=site),
    ):
        assert await refused(write) == grpc.StatusCode.PERMISSION_DENIED
    reader = calls.member(account.id, READ_ONLY)
    assert await refused(make_group(stub, reader, "Nope")) == grpc.StatusCode.PERMISSION_DENIED


async def test_the_database_itself_hides_groups_off_a_scoped_callers_paths(
    stub: TenancyServiceStub, calls: Calls, account: pb.Account, tenancy_config: TenancyConfig
) -> None:
    """Row-level security is the backstop: even a query without filters sees only the paths."""
    admin = calls.member(account.id)
    europe = await make_group(stub, admin, "Europe", type="region")
    north = await make_group(stub, admin, "North", europe)
    await make_group(stub, admin, "South", europe)
    harbour = await make_tenant(stub, admin, "Harbour", north)
    await stub.SetTenantLocation(
        pb.SetTenantLocationRequest(tenant_id=harbour.id, country="DE"), metadata=admin
    )
    other = await make_tenant(stub, admin, "Other")
    engine = create_async_engine(tenancy_config.app_url("tenancy"))
    set_context = text(
        "SELECT set_config('app.account_id', :account_id, true),"
        " set_config('app.tenant_ids', :tenant_ids, true),"
        " set_config('app.all_tenants', :all_tenants, true)"
    )
    try:
        async with engine.connect() as conn:
            for table in ("tenant_groups", "tenant_locations"):
                count = await conn.execute(text(f"SELECT count(*) FROM tenancy.{table}"))
                assert count.scalar_one() == 0, table
            await conn.rollback()

            scope = Scope(uuid.UUID(account.id), frozenset({uuid.UUID(other.id)}))
            await conn.execute(set_context, scope.settings())
            rows = await conn.execute(text("SELECT name FROM tenancy.tenant_groups"))
            assert rows.all() == []
            located = await conn.execute(text("SELECT count(*) FROM tenancy.tenant_locations"))
            assert located.scalar_one() == 0
            await conn.rollback()

            scope = Scope(uuid.UUID(account.id), frozenset({uuid.UUID(harbour.id)}))
            await conn.execute(set_context, scope.settings())
            rows = await conn.execute(text("SELECT name FROM tenancy.tenant_groups ORDER BY depth"))
            assert [r.name for r in rows] == ["Europe", "North"]
            await conn.rollback()
    finally:
        await engine.dispose()
