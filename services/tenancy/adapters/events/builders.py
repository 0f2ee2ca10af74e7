"""Domain events to `canopy.common.v1.Event` envelopes with their tenancy payloads."""

from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.runtime.context import CallContext
from services.runtime.events import new_event
from services.tenancy.domain.events import (
    AccountCreated,
    AccountReactivated,
    AccountSuspended,
    DomainEvent,
    TenantCreated,
    TenantMappingCodeCreated,
)

ACCOUNT_CREATED = "canopy.tenancy.account.created"
ACCOUNT_SUSPENDED = "canopy.tenancy.account.suspended"
ACCOUNT_REACTIVATED = "canopy.tenancy.account.reactivated"
TENANT_CREATED = "canopy.tenancy.tenant.created"
MAPPING_CODE_CREATED = "canopy.tenancy.mapping_code.created"


def envelope(event: DomainEvent, ctx: CallContext) -> events_pb2.Event:
    match event:
        case AccountCreated():
            return new_event(
                ACCOUNT_CREATED,
                tenancy_pb2.AccountCreated(
                    account_id=str(event.account_id),
                    name=event.name,
                    slug=event.slug,
                    tier=event.tier,
                ),
                account_id=event.account_id,
                ctx=ctx,
            )
        case AccountSuspended():
            return new_event(
                ACCOUNT_SUSPENDED,
                tenancy_pb2.AccountSuspended(account_id=str(event.account_id), reason=event.reason),
                account_id=event.account_id,
                ctx=ctx,
            )
        case AccountReactivated():
            return new_event(
                ACCOUNT_REACTIVATED,
                tenancy_pb2.AccountReactivated(account_id=str(event.account_id)),
                account_id=event.account_id,
                ctx=ctx,
            )
        case TenantCreated():
            return new_event(
                TENANT_CREATED,
                tenancy_pb2.TenantCreated(tenant_id=str(event.tenant_id), name=event.name),
                account_id=event.account_id,
                tenant_id=event.tenant_id,
                ctx=ctx,
            )
        case TenantMappingCodeCreated():
            return new_event(
                MAPPING_CODE_CREATED,
                tenancy_pb2.TenantMappingCodeCreated(
                    mapping_code_id=str(event.mapping_code_id),
                    tenant_id=str(event.tenant_id),
                    source=event.source,
                    code=event.code,
                ),
                account_id=event.account_id,
                tenant_id=event.tenant_id,
                ctx=ctx,
            )
    raise TypeError(f"no envelope for {type(event).__name__}")
