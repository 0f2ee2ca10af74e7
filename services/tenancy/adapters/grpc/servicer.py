"""TenancyService over gRPC: translate the request, call the use case, translate the result."""

import grpc

from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.runtime.grpc_server import context_of_call
from services.tenancy.adapters.grpc.translate import (
    account_to_proto,
    mapping_code_to_proto,
    parse_id,
    tenant_to_proto,
)
from services.tenancy.service_layer import accounts, data_keys, tenants
from services.tenancy.service_layer.paging import PageRequest
from services.tenancy.service_layer.ports import KeyWrapping, Transactions

Context = grpc.aio.ServicerContext


class TenancyServicer(tenancy_pb2_grpc.TenancyServiceServicer):
    def __init__(self, transactions: Transactions, keys: KeyWrapping) -> None:
        self.transactions = transactions
        self.keys = keys

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
