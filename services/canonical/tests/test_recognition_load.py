"""The header decides a file's source schema: a file whose header is another source schema's
loads with that one, one whose header matches none is quarantined with the reason, and each
load records the mapping version it used."""

import uuid

from sqlalchemy import select

from canopy.canonical.v1 import canonical_pb2
from services.canonical.adapters.db.tables import loads
from services.canonical.tests import test_service
from services.canonical.tests.test_service import (
    CUSTOMERS,
    HEADER,
    all_records,
    customer_schema,
    load,
    new_account,
)
from services.runtime.db import Database, Scope

config = test_service.config  # the fixtures: a service on real PostgreSQL and NATS
harness = test_service.harness

# The same customers, exported by another system with the first two columns swapped.
CRM_COLUMNS = ["dealer", "id", "first", "last", "mail", "born", "sex", "country"]
CRM = (
    ",".join(CRM_COLUMNS) + "\n"
    "D1,C1,Ada,Lovelace,ada@example.com,1815-12-10,F,gb\n"
    "D1,C2,Alan,Turing,alan@example.com,1912-06-23,M,GB\n"
).encode()


async def _with_crm_schema(h):
    account = await new_account(h)
    request = customer_schema("crm-customers")
    request.columns[:] = CRM_COLUMNS
    await h.stub.CreateSourceSchema(request, metadata=h.meta(account.id))
    return account


async def _load_row(h, account_id: uuid.UUID, file_id: uuid.UUID):
    db = Database(h.config.database_url)
    try:
        async with db.transaction(Scope.account(account_id)) as session:
            statement = select(loads).where(loads.c.file_id == file_id)
            return (await session.execute(statement)).one()
    finally:
        await db.dispose()


async def test_a_file_with_another_schemas_header_loads_with_that_schema(harness):
    account = await _with_crm_schema(harness)
    file_id, completed = await load(harness, account, CRM)  # routed to dms-customers
    assert (completed.status, completed.created) == ("loaded", 2)
    assert completed.source_schema_version == 1
    assert set(await all_records(harness, account.id)) == {"C1", "C2"}
    row = await _load_row(harness, account.id, file_id)
    assert (row.source_schema, row.source_schema_version, row.status) == (
        "crm-customers",
        1,
        "loaded",
    )
    started = await harness.wait_for("canopy.canonical.load.started", file_id)
    assert (started.source_schema, started.source_schema_version) == ("dms-customers", 1)


async def test_a_file_without_a_known_route_is_recognised_by_its_header(harness):
    account = await _with_crm_schema(harness)
    for routed in ("", "deleted-meanwhile"):
        file_id, completed = await load(harness, account, CRM, source_schema=routed)
        assert (completed.status, completed.source_schema_version) == ("loaded", 1)
        row = await _load_row(harness, account.id, file_id)
        assert row.source_schema == "crm-customers"


async def test_an_unknown_header_is_quarantined_with_the_reason(harness):
    account = await _with_crm_schema(harness)
    unknown = CUSTOMERS.replace(b"mail", b"e-mail", 1)
    file_id, completed = await load(harness, account, unknown)
    assert (completed.status, completed.rows_total, completed.created) == ("quarantined", 0, 0)
    assert completed.reason.startswith(
        "the header matches no source schema of the account (columns: 'id', 'dealer',"
    )
    assert "unexpected columns 'e-mail'" in completed.reason
    assert await all_records(harness, account.id) == {}
    row = await _load_row(harness, account.id, file_id)
    assert (row.status, row.source_schema, row.source_schema_version) == (
        "quarantined",
        "dms-customers",
        1,
    )

    _, unrouted = await load(harness, account, unknown, source_schema="")
    assert unrouted.status == "quarantined"
    assert unrouted.reason.startswith("the file matched no route of its drop zone; the header")


async def test_a_known_header_with_another_delimiter_fails_with_a_hint(harness):
    account = await _with_crm_schema(harness)
    _, completed = await load(harness, account, (HEADER + "C1;D1\n").replace(",", ";").encode())
    assert completed.status == "failed"
    assert "seems delimited by ';'" in completed.reason


async def test_loads_record_the_promoted_mapping_version(harness):
    account = await new_account(harness)
    meta = harness.meta(account.id)
    listed = await harness.stub.ListSourceSchemas(
        canonical_pb2.ListSourceSchemasRequest(), metadata=meta
    )
    [schema] = listed.source_schemas
    mappings = list(schema.field_mappings)
    mappings[0] = canonical_pb2.FieldMapping(
        canonical_field="first_name", source_column="first", transforms=["upper"]
    )
    await harness.stub.UpdateSourceSchema(
        canonical_pb2.UpdateSourceSchemaRequest(id=schema.id, field_mappings=mappings),
        metadata=meta,
    )
    await harness.stub.PromoteSourceSchema(
        canonical_pb2.PromoteSourceSchemaRequest(id=schema.id, version=2), metadata=meta
    )
    file_id, completed = await load(harness, account, CUSTOMERS)
    assert completed.source_schema_version == 2
    started = await harness.wait_for("canopy.canonical.load.started", file_id)
    assert started.source_schema_version == 2
    assert (await _load_row(harness, account.id, file_id)).source_schema_version == 2
