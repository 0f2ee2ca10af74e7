"""Unit tests of use cases on fakes: what is refused before anything is stored."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from services.ingestion.domain.dropzones import Route
from services.ingestion.domain.files import FileStatus, IngestedFile, RowCounts
from services.ingestion.service_layer import confirmations
from services.ingestion.service_layer.dropzones import create_dropzone
from services.ingestion.service_layer.ports import Ports, TenantDirectoryUnavailable
from services.ingestion.service_layer.receipts import LoadOutcome, receipt_json
from services.ingestion.tests.helpers import FakeTenantDirectory
from services.runtime.errors import Forbidden, InvalidInput, PreconditionFailed
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


def test_a_deletion_token_holds_only_for_the_state_it_was_issued_for() -> None:
    key, now = b"k" * 32, datetime(2026, 1, 1, tzinfo=UTC)
    token = confirmations.issue(key, "delete", ["login", "v1"], now + timedelta(minutes=10))
    confirmations.check(key, "delete", ["login", "v1"], token, now)
    for state, moment in ((["login", "v2"], now), (["login", "v1"], now + timedelta(hours=1))):
        with pytest.raises(PreconditionFailed):
            confirmations.check(key, "delete", state, token, moment)
    with pytest.raises(PreconditionFailed):
        confirmations.check(b"x" * 32, "delete", ["login", "v1"], token, now)


def test_a_receipt_tells_what_became_of_the_file() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    file = IngestedFile(
        id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        dropzone_id=uuid.uuid4(),
        name="customers.csv",
        size_bytes=10,
        sha256="a" * 64,
        storage_path="x",
        status=FileStatus.PARTIALLY_LOADED,
        received_at=now,
        updated_at=now,
    )
    outcome = LoadOutcome(
        file_id=file.id,
        status="partially_loaded",
        reason="1 row rejected",
        rows=RowCounts(total=3, created=1, updated=1, rejected=1),
        completed_at=now,
    )
    receipt = json.loads(receipt_json(file, outcome, "customers.csv.rejects.csv"))
    assert receipt["rows"]["loaded"] == 2 and receipt["rows"]["rejected"] == 1
    assert (receipt["sha256"], receipt["bytes"]) == ("a" * 64, 10)
    assert receipt["rejects_file"] == "rejects/customers.csv.rejects.csv"
