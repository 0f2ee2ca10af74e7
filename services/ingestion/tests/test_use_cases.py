"""Unit tests of use cases on fakes: what is refused before anything is stored."""

import uuid
from typing import Any, cast

import pytest

from services.ingestion.domain.dropzones import Route
from services.ingestion.service_layer.dropzones import create_dropzone
from services.ingestion.service_layer.ports import Ports, TenantDirectoryUnavailable
from services.ingestion.tests.helpers import FakeTenantDirectory
from services.runtime.errors import Forbidden, InvalidInput
from tests.support import caller

ROUTES = [Route("customers_*.csv", "dms_customers")]


class Untouchable:
    """Stands in for the database and the outbox: these cases must never reach them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was used")


def ports(tenants: object) -> Ports:
    untouchable = cast(Any, Untouchable())
    return Ports(db=untouchable, outbox=untouchable, tenants=cast(Any, tenants), store=untouchable)


class DownTenancy:
    async def unknown_tenants(self, *args: object, **kwargs: object) -> list[uuid.UUID]:
        raise TenantDirectoryUnavailable("tenancy could not confirm the tenants; try again")


async def test_creating_a_dropzone_for_an_unknown_tenant_names_it() -> None:
    tenants = FakeTenantDirectory()
    account = uuid.uuid4()
    known, stranger = tenants.add(account), tenants.add(uuid.uuid4())
    with pytest.raises(InvalidInput, match=f"unknown tenant: {stranger}"):
        await create_dropzone(
            ports=ports(tenants),
            ctx=caller(account, ["ingestion.dropzones:write"]),
            name="uploads",
            tenant_ids=[known, stranger],
            routes=ROUTES,
        )


async def test_a_tenant_scoped_caller_cannot_cover_other_tenants() -> None:
    tenants = FakeTenantDirectory()
    account = uuid.uuid4()
    mine, other = tenants.add(account), tenants.add(account)
    with pytest.raises(Forbidden, match=str(other)):
        await create_dropzone(
            ports=ports(tenants),
            ctx=caller(account, ["ingestion.dropzones:write"], tenant_ids=[mine]),
            name="uploads",
            tenant_ids=[mine, other],
            routes=ROUTES,
        )


async def test_an_unreachable_tenancy_is_reported_not_guessed() -> None:
    account = uuid.uuid4()
    with pytest.raises(TenantDirectoryUnavailable):
        await create_dropzone(
            ports=ports(DownTenancy()),
            ctx=caller(account, ["ingestion.dropzones:write"]),
            name="uploads",
            tenant_ids=[uuid.uuid4()],
            routes=ROUTES,
        )


async def test_a_dropzone_needs_an_account() -> None:
    with pytest.raises(Forbidden):
        await create_dropzone(
            ports=ports(FakeTenantDirectory()),
            ctx=caller(None, ["ingestion.dropzones:write"]),
            name="uploads",
            tenant_ids=[uuid.uuid4()],
            routes=ROUTES,
        )
