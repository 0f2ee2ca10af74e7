"""Domain objects to proto messages, and request fields to domain values."""

import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from canopy.tenancy.v1 import tenancy_pb2
from services.runtime.ids import parse_id
from services.tenancy.domain.groups import TenantGroup
from services.tenancy.domain.locations import TenantLocation
from services.tenancy.domain.model import Account, AccountStatus, Tenant, TenantMappingCode

STATUS_TO_PROTO = {
    AccountStatus.ACTIVE: tenancy_pb2.ACCOUNT_STATUS_ACTIVE,
    AccountStatus.SUSPENDED: tenancy_pb2.ACCOUNT_STATUS_SUSPENDED,
    AccountStatus.CLOSING: tenancy_pb2.ACCOUNT_STATUS_CLOSING,
    AccountStatus.CLOSED: tenancy_pb2.ACCOUNT_STATUS_CLOSED,
}


def parse_optional_id(value: str, *, field: str) -> uuid.UUID | None:
    """None for an empty field, else a valid id."""
    return parse_id(value, field=field) if value else None


def parse_ids(values: list[str], *, field: str) -> list[uuid.UUID]:
    return [parse_id(value, field=field) for value in values]


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def account_to_proto(account: Account) -> tenancy_pb2.Account:
    return tenancy_pb2.Account(
        id=str(account.id),
        name=account.name,
        slug=account.slug,
        tier=account.tier.value,
        status=STATUS_TO_PROTO[account.status],
        created_at=timestamp(account.created_at),
        updated_at=timestamp(account.updated_at),
    )


def tenant_to_proto(tenant: Tenant) -> tenancy_pb2.Tenant:
    return tenancy_pb2.Tenant(
        id=str(tenant.id),
        account_id=str(tenant.account_id),
        name=tenant.name,
        group_id=str(tenant.group_id) if tenant.group_id else "",
        created_at=timestamp(tenant.created_at),
        updated_at=timestamp(tenant.updated_at),
    )


def group_to_proto(
    group: TenantGroup, ancestors: list[TenantGroup] | None = None
) -> tenancy_pb2.TenantGroup:
    return tenancy_pb2.TenantGroup(
        id=str(group.id),
        account_id=str(group.account_id),
        parent_id=str(group.parent_id) if group.parent_id else "",
        type=group.type.value,
        name=group.name,
        depth=group.depth,
        created_at=timestamp(group.created_at),
        updated_at=timestamp(group.updated_at),
        ancestors=[
            tenancy_pb2.TenantGroupAncestor(id=str(a.id), type=a.type.value, name=a.name)
            for a in ancestors or ()
        ],
    )


def location_to_proto(location: TenantLocation) -> tenancy_pb2.TenantLocation:
    return tenancy_pb2.TenantLocation(
        tenant_id=str(location.tenant_id),
        address_lines=location.address_lines,
        city=location.city,
        postal_code=location.postal_code,
        region=location.region,
        country=location.country,
        latitude=location.latitude,
        longitude=location.longitude,
        created_at=timestamp(location.created_at),
        updated_at=timestamp(location.updated_at),
    )


def mapping_code_to_proto(mapping: TenantMappingCode) -> tenancy_pb2.TenantMappingCode:
    return tenancy_pb2.TenantMappingCode(
        id=str(mapping.id),
        tenant_id=str(mapping.tenant_id),
        source=mapping.source,
        code=mapping.code,
        created_at=timestamp(mapping.created_at),
    )
