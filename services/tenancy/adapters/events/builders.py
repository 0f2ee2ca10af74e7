"""Domain events to `canopy.common.v1.Event` envelopes with their tenancy payloads."""

import uuid

from canopy.common.v1 import events_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.runtime.context import CallContext
from services.runtime.events import new_event
from services.tenancy.domain.events import (
    AccountCreated,
    AccountReactivated,
    AccountSuspended,
    DomainEvent,
    LocationSnapshot,
    TenantCreated,
    TenantGroupCreated,
    TenantGroupDeleted,
    TenantGroupMoved,
    TenantGroupRenamed,
    TenantLocationChanged,
    TenantMappingCodeCreated,
    TenantMoved,
)

ACCOUNT_CREATED = "canopy.tenancy.account.created"
ACCOUNT_SUSPENDED = "canopy.tenancy.account.suspended"
ACCOUNT_REACTIVATED = "canopy.tenancy.account.reactivated"
TENANT_CREATED = "canopy.tenancy.tenant.created"
MAPPING_CODE_CREATED = "canopy.tenancy.mapping_code.created"
GROUP_CREATED = "canopy.tenancy.group.created"
GROUP_MOVED = "canopy.tenancy.group.moved"
GROUP_RENAMED = "canopy.tenancy.group.renamed"
GROUP_DELETED = "canopy.tenancy.group.deleted"
TENANT_MOVED = "canopy.tenancy.tenant.moved"
LOCATION_CHANGED = "canopy.tenancy.location.changed"


def _id(value: uuid.UUID | None) -> str:
    return str(value) if value else ""


def _location(
    tenant_id: uuid.UUID, location: LocationSnapshot | None
) -> tenancy_pb2.TenantLocation | None:
    if location is None:
        return None
    return tenancy_pb2.TenantLocation(
        tenant_id=str(tenant_id),
        address_lines=location.address_lines,
        city=location.city,
        postal_code=location.postal_code,
        region=location.region,
        country=location.country,
        latitude=location.latitude,
        longitude=location.longitude,
    )


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
        case TenantGroupCreated():
            return new_event(
                GROUP_CREATED,
                tenancy_pb2.TenantGroupCreated(
                    group_id=str(event.group_id),
                    parent_id=_id(event.parent_id),
                    type=event.type,
                    name=event.name,
                ),
                account_id=event.account_id,
                ctx=ctx,
            )
        case TenantGroupMoved():
            return new_event(
                GROUP_MOVED,
                tenancy_pb2.TenantGroupMoved(
                    group_id=str(event.group_id),
                    old_parent_id=_id(event.old_parent_id),
                    new_parent_id=_id(event.new_parent_id),
                ),
                account_id=event.account_id,
                ctx=ctx,
            )
        case TenantGroupRenamed():
            return new_event(
                GROUP_RENAMED,
                tenancy_pb2.TenantGroupRenamed(
                    group_id=str(event.group_id), old_name=event.old_name, new_name=event.new_name
                ),
                account_id=event.account_id,
                ctx=ctx,
            )
        case TenantGroupDeleted():
            return new_event(
                GROUP_DELETED,
                tenancy_pb2.TenantGroupDeleted(
                    group_id=str(event.group_id),
                    name=event.name,
                    deleted_groups=event.deleted_groups,
                    moved_tenants=event.moved_tenants,
                    tenants_moved_to=_id(event.tenants_moved_to),
                ),
                account_id=event.account_id,
                ctx=ctx,
            )
        case TenantMoved():
            return new_event(
                TENANT_MOVED,
                tenancy_pb2.TenantMoved(
                    tenant_id=str(event.tenant_id),
                    old_group_id=_id(event.old_group_id),
                    new_group_id=_id(event.new_group_id),
                ),
                account_id=event.account_id,
                tenant_id=event.tenant_id,
                ctx=ctx,
            )
        case TenantLocationChanged():
            return new_event(
                LOCATION_CHANGED,
                tenancy_pb2.TenantLocationChanged(
                    tenant_id=str(event.tenant_id),
                    location=_location(event.tenant_id, event.location),
                    removed=event.location is None,
                ),
                account_id=event.account_id,
                tenant_id=event.tenant_id,
                ctx=ctx,
            )
    raise TypeError(f"no envelope for {type(event).__name__}")
