"""TenancyService over gRPC: translate the request, call the use case, translate the result."""

import grpc

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.runtime.grpc_server import context_of_call
from services.tenancy.adapters.grpc.translate import (
    account_to_proto,
    group_to_proto,
    location_to_proto,
    mapping_code_to_proto,
    parse_id,
    parse_ids,
    parse_optional_id,
    tenant_to_proto,
)
from services.tenancy.domain.groups import TreeLimits
from services.tenancy.service_layer import accounts, data_keys, groups, locations, tenants
from services.tenancy.service_layer.paging import PageRequest
from services.tenancy.service_layer.ports import KeyWrapping, Transactions

Context = grpc.aio.ServicerContext


class TenancyServicer(tenancy_pb2_grpc.TenancyServiceServicer):
    def __init__(
        self, transactions: Transactions, keys: KeyWrapping, limits: TreeLimits | None = None
    ) -> None:
        self.transactions = transactions
        self.keys = keys
        self.limits = limits or TreeLimits()

    async def CreateAccount(
        self, request: tenancy_pb2.CreateAccountRequest, context: Context
    ) -> tenancy_pb2.Account:
        account = await accounts.create_account(
            self.transactions,
            self.keys,
            ctx=context_of_call(),
            name=request.name,
            slug=request.slug,
            tier=request.tier,
        )
        return account_to_proto(account)

    async def GetAccount(
        self, request: tenancy_pb2.GetAccountRequest, context: Context
    ) -> tenancy_pb2.Account:
        account = await accounts.get_account(
            self.transactions, ctx=context_of_call(), ref=request.account
        )
        return account_to_proto(account)

    async def SuspendAccount(
        self, request: tenancy_pb2.SuspendAccountRequest, context: Context
    ) -> tenancy_pb2.Account:
        account = await accounts.suspend_account(
            self.transactions,
            ctx=context_of_call(),
            account_id=parse_id(request.account_id, field="account_id"),
            reason=request.reason,
        )
        return account_to_proto(account)

    async def ReactivateAccount(
        self, request: tenancy_pb2.ReactivateAccountRequest, context: Context
    ) -> tenancy_pb2.Account:
        account = await accounts.reactivate_account(
            self.transactions,
            ctx=context_of_call(),
            account_id=parse_id(request.account_id, field="account_id"),
        )
        return account_to_proto(account)

    async def CreateTenant(
        self, request: tenancy_pb2.CreateTenantRequest, context: Context
    ) -> tenancy_pb2.Tenant:
        tenant = await tenants.create_tenant(
            self.transactions, ctx=context_of_call(), name=request.name
        )
        return tenant_to_proto(tenant)

    async def ListTenants(
        self, request: tenancy_pb2.ListTenantsRequest, context: Context
    ) -> tenancy_pb2.ListTenantsResponse:
        page = await tenants.list_tenants(
            self.transactions,
            ctx=context_of_call(),
            page=PageRequest.parse(page_size=request.page_size, page_token=request.page_token),
        )
        return tenancy_pb2.ListTenantsResponse(
            tenants=[tenant_to_proto(t) for t in page.items],
            next_page_token=page.next_token,
        )

    async def GetTenant(
        self, request: tenancy_pb2.GetTenantRequest, context: Context
    ) -> tenancy_pb2.Tenant:
        tenant = await tenants.get_tenant(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
        )
        return tenant_to_proto(tenant)

    async def CreateTenantMappingCode(
        self, request: tenancy_pb2.CreateTenantMappingCodeRequest, context: Context
    ) -> tenancy_pb2.TenantMappingCode:
        mapping = await tenants.create_mapping_code(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
            source=request.source,
            code=request.code,
        )
        return mapping_code_to_proto(mapping)

    async def ListTenantMappingCodes(
        self, request: tenancy_pb2.ListTenantMappingCodesRequest, context: Context
    ) -> tenancy_pb2.ListTenantMappingCodesResponse:
        page = await tenants.list_mapping_codes(
            self.transactions,
            ctx=context_of_call(),
            source=request.source,
            page=PageRequest.parse(page_size=request.page_size, page_token=request.page_token),
        )
        return tenancy_pb2.ListTenantMappingCodesResponse(
            codes=[mapping_code_to_proto(m) for m in page.items],
            next_page_token=page.next_token,
        )

    async def ResolveTenantCodes(
        self, request: tenancy_pb2.ResolveTenantCodesRequest, context: Context
    ) -> tenancy_pb2.ResolveTenantCodesResponse:
        resolved = await tenants.resolve_codes(
            self.transactions,
            ctx=context_of_call(),
            source=request.source,
            codes=list(request.codes),
        )
        return tenancy_pb2.ResolveTenantCodesResponse(
            tenant_ids={code: str(tenant_id) for code, tenant_id in resolved.items()}
        )

    async def GetDataKey(
        self, request: tenancy_pb2.GetDataKeyRequest, context: Context
    ) -> tenancy_pb2.DataKey:
        key = await data_keys.get_data_key(
            self.transactions, self.keys, ctx=context_of_call(), version=request.version or None
        )
        return tenancy_pb2.DataKey(version=key.version, key=key.key)

    async def ExpandTenantScope(
        self, request: tenancy_pb2.ExpandTenantScopeRequest, context: Context
    ) -> tenancy_pb2.ExpandTenantScopeResponse:
        tenant_ids = await groups.expand_scope(
            self.transactions,
            ctx=context_of_call(),
            group_ids=parse_ids(list(request.group_ids), field="group_ids"),
            tenant_ids=parse_ids(list(request.tenant_ids), field="tenant_ids"),
        )
        return tenancy_pb2.ExpandTenantScopeResponse(tenant_ids=[str(t) for t in tenant_ids])

    async def CreateTenantGroup(
        self, request: tenancy_pb2.CreateTenantGroupRequest, context: Context
    ) -> tenancy_pb2.TenantGroup:
        created = await groups.create_group(
            self.transactions,
            self.limits,
            ctx=context_of_call(),
            type=request.type,
            name=request.name,
            parent_id=parse_optional_id(request.parent_id, field="parent_id"),
        )
        return group_to_proto(created.group, created.ancestors)

    async def ListTenantGroups(
        self, request: tenancy_pb2.ListTenantGroupsRequest, context: Context
    ) -> tenancy_pb2.ListTenantGroupsResponse:
        page = await groups.list_groups(
            self.transactions,
            ctx=context_of_call(),
            parent_id=parse_optional_id(request.parent_id, field="parent_id"),
            page=PageRequest.parse(page_size=request.page_size, page_token=request.page_token),
        )
        return tenancy_pb2.ListTenantGroupsResponse(
            groups=[group_to_proto(g) for g in page.items], next_page_token=page.next_token
        )

    async def GetTenantGroup(
        self, request: tenancy_pb2.GetTenantGroupRequest, context: Context
    ) -> tenancy_pb2.TenantGroup:
        found = await groups.get_group(
            self.transactions,
            ctx=context_of_call(),
            group_id=parse_id(request.group_id, field="group_id"),
        )
        return group_to_proto(found.group, found.ancestors)

    async def UpdateTenantGroup(
        self, request: tenancy_pb2.UpdateTenantGroupRequest, context: Context
    ) -> tenancy_pb2.TenantGroup:
        move = request.HasField("parent_id")
        updated = await groups.update_group(
            self.transactions,
            self.limits,
            ctx=context_of_call(),
            group_id=parse_id(request.group_id, field="group_id"),
            name=request.name if request.HasField("name") else None,
            move=move,
            parent_id=parse_optional_id(request.parent_id, field="parent_id") if move else None,
        )
        return group_to_proto(updated.group, updated.ancestors)

    async def DeleteTenantGroup(
        self, request: tenancy_pb2.DeleteTenantGroupRequest, context: Context
    ) -> tenancy_pb2.DeleteTenantGroupResponse:
        deleted = await groups.delete_group(
            self.transactions,
            ctx=context_of_call(),
            group_id=parse_id(request.group_id, field="group_id"),
            recursive=request.recursive,
        )
        return tenancy_pb2.DeleteTenantGroupResponse(
            deleted_groups=deleted.deleted_groups,
            moved_tenants=deleted.moved_tenants,
            tenants_moved_to=str(deleted.tenants_moved_to) if deleted.tenants_moved_to else "",
        )

    async def ListTenantGroupTenants(
        self, request: tenancy_pb2.ListTenantGroupTenantsRequest, context: Context
    ) -> tenancy_pb2.ListTenantsResponse:
        page = await groups.list_group_tenants(
            self.transactions,
            ctx=context_of_call(),
            group_id=parse_id(request.group_id, field="group_id"),
            recursive=request.recursive,
            page=PageRequest.parse(page_size=request.page_size, page_token=request.page_token),
        )
        return tenancy_pb2.ListTenantsResponse(
            tenants=[tenant_to_proto(t) for t in page.items], next_page_token=page.next_token
        )

    async def MoveTenant(
        self, request: tenancy_pb2.MoveTenantRequest, context: Context
    ) -> tenancy_pb2.Tenant:
        tenant = await groups.move_tenant(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
            group_id=parse_optional_id(request.group_id, field="group_id"),
        )
        return tenant_to_proto(tenant)

    async def GetTenantLocation(
        self, request: tenancy_pb2.GetTenantLocationRequest, context: Context
    ) -> tenancy_pb2.TenantLocation:
        location = await locations.get_location(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
        )
        return location_to_proto(location)

    async def SetTenantLocation(
        self, request: tenancy_pb2.SetTenantLocationRequest, context: Context
    ) -> tenancy_pb2.TenantLocation:
        location = await locations.set_location(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
            address_lines=list(request.address_lines),
            city=request.city,
            postal_code=request.postal_code,
            region=request.region,
            country=request.country,
            latitude=request.latitude if request.HasField("latitude") else None,
            longitude=request.longitude if request.HasField("longitude") else None,
        )
        return location_to_proto(location)

    async def DeleteTenantLocation(
        self, request: tenancy_pb2.DeleteTenantLocationRequest, context: Context
    ) -> tenancy_pb2.DeleteTenantLocationResponse:
        await locations.delete_location(
            self.transactions,
            ctx=context_of_call(),
            tenant_id=parse_id(request.tenant_id, field="tenant_id"),
        )
        return tenancy_pb2.DeleteTenantLocationResponse()
