"""Tenants and tenant mapping codes, within accounts and tenant scopes."""

import grpc
import pytest

from canopy.tenancy.v1 import tenancy_pb2
from canopy.tenancy.v1.tenancy_pb2_grpc import TenancyServiceStub
from services.runtime.events import unpack
from services.tenancy.tests.helpers import Calls, Published

READ_ONLY = ("tenancy.tenants:read",)


async def create_tenants(
    stub: TenancyServiceStub, metadata: tuple[tuple[str, str], ...], *names: str
) -> list[tenancy_pb2.Tenant]:
    return [
        await stub.CreateTenant(tenancy_pb2.CreateTenantRequest(name=name), metadata=metadata)
        for name in names
    ]


async def test_tenants_are_created_listed_in_pages_and_fetched(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    north, south, east = await create_tenants(stub, admin, "North", "South", "East")
    assert north.account_id == account.id and north.name == "North"
    event = await published.wait_for("canopy.tenancy.tenant.created", account.id)
    assert event.tenant_id == north.id
    assert unpack(event, tenancy_pb2.TenantCreated).name == "North"

    seen, token = [], ""
    while True:
        page = await stub.ListTenants(
            tenancy_pb2.ListTenantsRequest(page_size=2, page_token=token), metadata=admin
        )
        seen += [t.id for t in page.tenants]
        token = page.next_page_token
        if not token:
            break
    assert seen == [north.id, south.id, east.id]

    got = await stub.GetTenant(tenancy_pb2.GetTenantRequest(tenant_id=south.id), metadata=admin)
    assert got == south


async def test_tenant_names_are_unique_per_account_ignoring_case(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    admin = calls.member(account.id)
    await create_tenants(stub, admin, "Harbour Site")
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await create_tenants(stub, admin, "harbour site")
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as blank:
        await create_tenants(stub, admin, "  ")
    assert blank.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_mapping_codes_are_created_listed_and_resolved_in_one_call(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account, published: Published
) -> None:
    admin = calls.member(account.id)
    north, south = await create_tenants(stub, admin, "North", "South")
    made = {}
    for tenant, source, code in (
        (north, "dms", "N01"),
        (north, "dms", "N02"),
        (south, "dms", "S01"),
        (south, "shop", "N01"),
    ):
        made[(source, code)] = await stub.CreateTenantMappingCode(
            tenancy_pb2.CreateTenantMappingCodeRequest(
                tenant_id=tenant.id, source=source, code=code
            ),
            metadata=admin,
        )
    event = await published.wait_for("canopy.tenancy.mapping_code.created", account.id)
    payload = unpack(event, tenancy_pb2.TenantMappingCodeCreated)
    assert (payload.tenant_id, payload.source, payload.code) == (north.id, "dms", "N01")

    listed = await stub.ListTenantMappingCodes(
        tenancy_pb2.ListTenantMappingCodesRequest(source="dms"), metadata=admin
    )
    assert [(c.code, c.tenant_id) for c in listed.codes] == [
        ("N01", north.id),
        ("N02", north.id),
        ("S01", south.id),
    ]
    everything = await stub.ListTenantMappingCodes(
        tenancy_pb2.ListTenantMappingCodesRequest(), metadata=admin
    )
    assert len(everything.codes) == 4

    resolved = await stub.ResolveTenantCodes(
        tenancy_pb2.ResolveTenantCodesRequest(source="dms", codes=["N01", "S01", "N01", "X99"]),
        metadata=calls.member(account.id, READ_ONLY),
    )
    assert dict(resolved.tenant_ids) == {"N01": north.id, "S01": south.id}
    shop = await stub.ResolveTenantCodes(
        tenancy_pb2.ResolveTenantCodesRequest(source="shop", codes=["N01", "S01"]),
        metadata=admin,
    )
    assert dict(shop.tenant_ids) == {"N01": south.id}


async def test_a_code_is_unique_per_source_and_needs_a_known_tenant(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    admin = calls.member(account.id)
    [north] = await create_tenants(stub, admin, "North")
    request = tenancy_pb2.CreateTenantMappingCodeRequest(tenant_id=north.id, source="dms", code="A")
    await stub.CreateTenantMappingCode(request, metadata=admin)
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await stub.CreateTenantMappingCode(request, metadata=admin)
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

    unknown = tenancy_pb2.CreateTenantMappingCodeRequest(
        tenant_id="0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", source="dms", code="B"
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.CreateTenantMappingCode(unknown, metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_caller_limited_to_some_tenants_sees_only_those(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    admin = calls.member(account.id)
    north, south = await create_tenants(stub, admin, "North", "South")
    for tenant, code in ((north, "N01"), (south, "S01")):
        await stub.CreateTenantMappingCode(
            tenancy_pb2.CreateTenantMappingCodeRequest(
                tenant_id=tenant.id, source="dms", code=code
            ),
            metadata=admin,
        )
    site = calls.member(
        account.id, ("tenancy.tenants:read", "tenancy.tenants:write"), tenant_ids=[north.id]
    )
    listed = await stub.ListTenants(tenancy_pb2.ListTenantsRequest(), metadata=site)
    assert [t.id for t in listed.tenants] == [north.id]
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetTenant(tenancy_pb2.GetTenantRequest(tenant_id=south.id), metadata=site)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    codes = await stub.ListTenantMappingCodes(
        tenancy_pb2.ListTenantMappingCodesRequest(), metadata=site
    )
    assert [c.code for c in codes.codes] == ["N01"]
    resolved = await stub.ResolveTenantCodes(
        tenancy_pb2.ResolveTenantCodesRequest(source="dms", codes=["N01", "S01"]), metadata=site
    )
    assert dict(resolved.tenant_ids) == {"N01": north.id}
    with pytest.raises(grpc.aio.AioRpcError) as outside:
        await stub.CreateTenantMappingCode(
            tenancy_pb2.CreateTenantMappingCodeRequest(tenant_id=south.id, source="x", code="1"),
            metadata=site,
        )
    assert outside.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as whole_account:
        await stub.CreateTenant(tenancy_pb2.CreateTenantRequest(name="West"), metadata=site)
    assert whole_account.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_second_account_cannot_read_or_use_the_firsts_tenants_and_codes(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    first = calls.member(account.id)
    [north] = await create_tenants(stub, first, "North")
    await stub.CreateTenantMappingCode(
        tenancy_pb2.CreateTenantMappingCodeRequest(tenant_id=north.id, source="dms", code="N01"),
        metadata=first,
    )
    other = await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name="Rival", slug=f"rival-{account.slug}"),
        metadata=calls.operator(),
    )
    second = calls.member(other.id)

    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await stub.GetTenant(tenancy_pb2.GetTenantRequest(tenant_id=north.id), metadata=second)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assert account.id not in (hidden.value.details() or "")
    listed = await stub.ListTenants(tenancy_pb2.ListTenantsRequest(), metadata=second)
    assert list(listed.tenants) == []
    codes = await stub.ListTenantMappingCodes(
        tenancy_pb2.ListTenantMappingCodesRequest(), metadata=second
    )
    assert list(codes.codes) == []
    resolved = await stub.ResolveTenantCodes(
        tenancy_pb2.ResolveTenantCodesRequest(source="dms", codes=["N01"]), metadata=second
    )
    assert dict(resolved.tenant_ids) == {}
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.CreateTenantMappingCode(
            tenancy_pb2.CreateTenantMappingCodeRequest(tenant_id=north.id, source="dms", code="Z"),
            metadata=second,
        )
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    # The same name and code are free in the second account.
    [own] = await create_tenants(stub, second, "North")
    await stub.CreateTenantMappingCode(
        tenancy_pb2.CreateTenantMappingCodeRequest(tenant_id=own.id, source="dms", code="N01"),
        metadata=second,
    )


async def test_bad_page_tokens_and_ids_are_refused_clearly(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    admin = calls.member(account.id)
    for call in (
        stub.ListTenants(tenancy_pb2.ListTenantsRequest(page_token="!!"), metadata=admin),
        stub.ListTenants(tenancy_pb2.ListTenantsRequest(page_size=-1), metadata=admin),
        stub.GetTenant(tenancy_pb2.GetTenantRequest(tenant_id="north"), metadata=admin),
        stub.ResolveTenantCodes(tenancy_pb2.ResolveTenantCodesRequest(codes=["A"]), metadata=admin),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
