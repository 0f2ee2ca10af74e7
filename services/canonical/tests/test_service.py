"""Integration tests: the canonical service on the real PostgreSQL and NATS, through gRPC.

Files arrive as real `canopy.ingestion.file.received` envelopes on JetStream; the ports to
ingestion and tenancy are fakes passed to `bootstrap`.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import nats
import pytest
from sqlalchemy import func, select

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.adapters.db.tables import records as records_table
from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.canonical.tests.fakes import FakeFiles, FakeKeys, FakeTenants
from services.runtime.db import Database, Scope
from services.runtime.events import new_event, unpack
from services.runtime.migrations import migrate
from tests.support import caller, serving

ADMIN = [
    "canonical.schemas:read",
    "canonical.schemas:write",
    "canonical.records:read",
    "canonical.rejects:read",
]
SOURCE = "dms"
HEADER = "id,dealer,first,last,mail,born,sex,country\n"
GOOD_ROWS = (
    "C1,D1,Ada,Lovelace,ada@example.com,1815-12-10,F,gb\n"
    "C2,D1, Alan ,Turing,Alan@Example.com,1912-06-23,M,GB\n"
)
BAD_ROWS = (
    "C3,D1,,,not-an-email,,X,GB\n"  # row 4: three reasons
    "C4,D2,Grace,Hopper,grace@example.com,1906-12-09,F,US\n"  # row 5: outside the scope
    "C5,D3,Linus,T,linus@example.com,,M,FI\n"  # row 6: unknown tenant code
    "C6,D1,short,row\n"  # row 7: wrong number of fields
)
LAST_ROW = '"C7",D1,"Émilie","du Châtelet","emilie@example.com",1706-12-17,F,FR\n'
CUSTOMERS = (HEADER + GOOD_ROWS + BAD_ROWS + LAST_ROW).encode()


@dataclass
class Harness:
    stub: canonical_pb2_grpc.CanonicalServiceStub
    tokens: object
    config: CanonicalConfig
    js: object
    files: FakeFiles
    tenants: FakeTenants
    keys: FakeKeys
    events: list[events_pb2.Event] = field(default_factory=list)

    def meta(self, account_id: uuid.UUID | None, permissions=ADMIN, **kwargs):
        return self.tokens.metadata(caller(account_id, permissions, **kwargs))

    async def publish(self, event: events_pb2.Event) -> None:
        await self.js.publish(event.type, event.SerializeToString())

    async def wait_for(self, event_type: str, file_id: uuid.UUID, seconds: float = 20):
        """The payload of the first `event_type` event about `file_id`."""
        message = {
            "canopy.canonical.load.started": canonical_pb2.LoadStarted,
            "canopy.canonical.load.completed": canonical_pb2.LoadCompleted,
        }[event_type]
        for _ in range(int(seconds * 20)):
            found = self.about(event_type, message, file_id)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event_type} for file {file_id}")

    def about(self, event_type, message, file_id):
        return [
            payload
            for event in self.events
            if event.type == event_type
            and (payload := unpack(event, message)).file_id == str(file_id)
        ]


@pytest.fixture(scope="module")
def config(runtime_config) -> CanonicalConfig:
    config = CanonicalConfig(**runtime_config.model_dump(), grpc_port=0, load_batch_size=3)
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    return config


@pytest.fixture(scope="module")
async def harness(config, tokens) -> AsyncIterator[Harness]:
    files, tenants, keys = FakeFiles(), FakeTenants(), FakeKeys()
    nc = await nats.connect(config.nats_url)
    try:
        async with (
            bootstrap(config, files=files, tenants=tenants, keys=keys) as app,
            serving(app, tokens) as channel,
        ):
            harness = Harness(
                stub=canonical_pb2_grpc.CanonicalServiceStub(channel),
                tokens=tokens,
                config=config,
                js=nc.jetstream(),
                files=files,
                tenants=tenants,
                keys=keys,
            )

            async def collect(msg):
                harness.events.append(events_pb2.Event.FromString(msg.data))

            await nc.subscribe("canopy.canonical.>", cb=collect)
            yield harness
    finally:
        await nc.close()


@dataclass
class Account:
    id: uuid.UUID
    dealer: uuid.UUID  # D1: in the drop zone's scope
    elsewhere: uuid.UUID  # D2: a tenant of the account outside the scope


async def new_account(h: Harness, *, schema_name: str = "dms-customers", **schema) -> Account:
    account_id = uuid.uuid4()
    account = Account(
        account_id, h.tenants.add(account_id, SOURCE, "D1"), h.tenants.add(account_id, SOURCE, "D2")
    )
    await h.stub.CreateSourceSchema(
        customer_schema(schema_name, **schema), metadata=h.meta(account_id)
    )
    return account


def customer_schema(
    name: str = "dms-customers", **overrides
) -> canonical_pb2.CreateSourceSchemaRequest:
    request = canonical_pb2.CreateSourceSchemaRequest(
        name=name,
        canonical_schema="customer",
        columns=["id", "dealer", "first", "last", "mail", "born", "sex", "country"],
        source_id_column="id",
        tenant_code_column="dealer",
        tenant_code_source=SOURCE,
        field_mappings=[
            canonical_pb2.FieldMapping(
                canonical_field="first_name", source_column="first", transforms=["trim"]
            ),
            canonical_pb2.FieldMapping(canonical_field="last_name", source_column="last"),
            canonical_pb2.FieldMapping(
                canonical_field="email", source_column="mail", transforms=["trim", "lower"]
            ),
            canonical_pb2.FieldMapping(canonical_field="date_of_birth", source_column="born"),
            canonical_pb2.FieldMapping(
                canonical_field="gender",
                source_column="sex",
                transforms=["upper"],
                value_map="genders",
            ),
            canonical_pb2.FieldMapping(
                canonical_field="country", source_column="country", transforms=["upper"]
            ),
        ],
        value_maps=[
            canonical_pb2.ValueMap(
                name="genders", entries={"M": "male", "F": "female"}, strict=True
            )
        ],
    )
    for key, value in overrides.items():
        setattr(request, key, value)
    return request


def file_received(
    account: Account, file_id: uuid.UUID, *, source_schema: str = "dms-customers"
) -> events_pb2.Event:
    payload = ingestion_pb2.FileReceived(
        file_id=str(file_id),
        dropzone_id=str(uuid.uuid4()),
        name="customers.csv",
        size_bytes=100,
        sha256="0" * 64,
        source_schema=source_schema,
        tenant_ids=[str(account.dealer)],
    )
    return new_event("canopy.ingestion.file.received", payload, account_id=account.id)


async def load(h: Harness, account: Account, data: bytes, **kwargs):
    file_id = h.files.add(account.id, data)
    await h.publish(file_received(account, file_id, **kwargs))
    return file_id, await h.wait_for("canopy.canonical.load.completed", file_id)


async def all_records(h: Harness, account_id: uuid.UUID, schema="customer", **kwargs):
    response = await h.stub.ListRecords(
        canonical_pb2.ListRecordsRequest(schema=schema, page_size=500),
        metadata=h.meta(account_id, **kwargs),
    )
    return {r.source_id: r for r in response.records}


async def rejects_of(h: Harness, account_id: uuid.UUID, file_id: uuid.UUID):
    response = await h.stub.ListRejects(
        canonical_pb2.ListRejectsRequest(file_id=str(file_id)), metadata=h.meta(account_id)
    )
    return [(r.row_number, list(r.reasons)) for r in response.rejects]


# Schemas


async def test_canonical_schemas_report_types_and_stored_widths(harness):
    response = await harness.stub.ListCanonicalSchemas(
        canonical_pb2.ListCanonicalSchemasRequest(), metadata=harness.meta(uuid.uuid4())
    )
    schemas = {s.name: s for s in response.schemas}
    assert {"customer", "vehicle", "address", "order", "payment", "refund"} <= set(schemas)
    assert {"payout", "payout_line", "dispute"} <= set(schemas)
    fields = {f.name: f for f in schemas["customer"].fields}
    assert fields["last_name"].required and not fields["last_name"].sensitive
    assert (fields["email"].type, fields["email"].sensitive) == ("email", True)
    assert (fields["email"].max_length, fields["email"].stored_width) == (254, 382)
    assert fields["first_name"].stored_width == 100
    vin = next(f for f in schemas["vehicle"].fields if f.name == "vin")
    assert (vin.max_length, vin.stored_width) == (17, 66)


async def test_source_schema_is_created_listed_and_announced(harness):
    account_id = uuid.uuid4()
    created = await harness.stub.CreateSourceSchema(
        customer_schema(tenant_code_source=""), metadata=harness.meta(account_id)
    )
    assert (created.delimiter, created.encoding, created.version) == (",", "utf-8", 1)
    assert created.tenant_code_source == "dms-customers"
    assert created.value_maps[0].entries == {"M": "male", "F": "female"}
    listed = await harness.stub.ListSourceSchemas(
        canonical_pb2.ListSourceSchemasRequest(), metadata=harness.meta(account_id)
    )
    assert [s.id for s in listed.source_schemas] == [created.id]
    for _ in range(100):
        announced = [
            unpack(e, canonical_pb2.SourceSchemaCreated)
            for e in harness.events
            if e.type == "canopy.canonical.source_schema.created"
            and e.account_id == str(account_id)
        ]
        if announced:
            break
        await asyncio.sleep(0.05)
    assert [a.source_schema_id for a in announced] == [created.id]


async def test_invalid_source_schema_is_refused_with_every_problem(harness):
    request = customer_schema(source_id_column="customer_no", encoding="ebcdic")
    request.field_mappings.add(canonical_field="shoe_size", source_column="id")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.CreateSourceSchema(request, metadata=harness.meta(uuid.uuid4()))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for problem in ("source_id_column 'customer_no'", "'ebcdic'", "'shoe_size' does not exist"):
        assert problem in raised.value.details()


async def test_source_schema_names_are_unique_per_account(harness):
    account_id = uuid.uuid4()
    await harness.stub.CreateSourceSchema(customer_schema(), metadata=harness.meta(account_id))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.CreateSourceSchema(customer_schema(), metadata=harness.meta(account_id))
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # Another account may use the same name.
    await harness.stub.CreateSourceSchema(customer_schema(), metadata=harness.meta(uuid.uuid4()))


async def test_calls_need_a_token_and_the_permission(harness):
    request = canonical_pb2.ListRecordsRequest(schema="customer")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListRecords(request)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListRecords(
            request, metadata=harness.meta(uuid.uuid4(), ["canonical.rejects:read"])
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.CreateSourceSchema(
            customer_schema(), metadata=harness.meta(uuid.uuid4(), ["canonical.schemas:read"])
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_schema_and_bad_ids_are_clear_errors(harness):
    account_id = uuid.uuid4()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListRecords(
            canonical_pb2.ListRecordsRequest(schema="invoice"), metadata=harness.meta(account_id)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListRejects(
            canonical_pb2.ListRejectsRequest(file_id="nope"), metadata=harness.meta(account_id)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListRecords(
            canonical_pb2.ListRecordsRequest(schema="customer", page_token="!!"),
            metadata=harness.meta(account_id),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# Loading files


async def test_file_loads_good_rows_and_rejects_bad_ones_with_every_reason(harness):
    account = await new_account(harness)
    file_id, completed = await load(harness, account, CUSTOMERS)
    started = await harness.wait_for("canopy.canonical.load.started", file_id)
    assert started.source_schema == "dms-customers"
    assert (completed.status, completed.rows_total) == ("partially_loaded", 7)
    assert (completed.created, completed.updated, completed.unchanged) == (3, 0, 0)
    assert completed.rejected == 4
    assert completed.reason == "4 of 7 rows rejected"

    records = await all_records(harness, account.id)
    assert set(records) == {"C1", "C2", "C7"}
    ada = records["C1"]
    assert dict(ada.fields) == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "date_of_birth": "1815-12-10",
        "gender": "female",
        "country": "GB",
    }
    assert records["C2"].fields["first_name"] == "Alan"
    assert records["C2"].fields["email"] == "alan@example.com"
    assert records["C7"].fields["last_name"] == "du Châtelet"
    assert ada.tenant_id == str(account.dealer)
    assert ada.dedupe_key == f"{account.dealer}:{SOURCE}:customer:C1"
    assert (ada.source, ada.file_id) == (SOURCE, str(file_id))

    assert await rejects_of(harness, account.id, file_id) == [
        (
            4,
            [
                "row 4: last_name: is required",
                "row 4: email: not an email address",
                "row 4: gender: code 'X' has no entry in value map 'genders'",
            ],
        ),
        (5, ["row 5: tenant code 'D2' belongs to a tenant outside this drop zone's scope"]),
        (6, ["row 6: tenant code 'D3' is unknown for source 'dms'"]),
        (7, ["row 7: expected 8 fields, found 4"]),
    ]
    # All of a batch's tenant codes in one call, never one per row.
    calls = [c for c in harness.tenants.calls if c[0] == account.id]
    assert len(calls) <= 3 and sum(len(c[2]) for c in calls) == 3


async def test_sensitive_fields_are_stored_encrypted(harness, config):
    account = await new_account(harness)
    await load(harness, account, CUSTOMERS)
    db = Database(config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.account(account.id)) as session:
            rows = (
                await session.execute(select(records_table.c.source_id, records_table.c.data))
            ).all()
    finally:
        await db.dispose()
    data = dict(rows)["C1"]
    assert data["email"].startswith("v1:") and "ada" not in data["email"]
    assert data["date_of_birth"].startswith("v1:")
    assert data["first_name"] == "Ada"


async def test_redelivered_event_loads_nothing_twice(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    event = file_received(account, file_id)
    await harness.publish(event)
    await harness.wait_for("canopy.canonical.load.completed", file_id)
    await harness.publish(event)  # the same event id again
    marker, _ = await load(harness, account, HEADER.encode())  # behind it on the stream
    completed = harness.about(
        "canopy.canonical.load.completed", canonical_pb2.LoadCompleted, file_id
    )
    assert len(completed) == 1
    assert len(await rejects_of(harness, account.id, file_id)) == 4
    assert len(await all_records(harness, account.id)) == 3


async def test_the_same_rows_again_are_unchanged_and_changed_rows_updated(harness):
    account = await new_account(harness)
    first, _ = await load(harness, account, CUSTOMERS)
    _, again = await load(harness, account, CUSTOMERS)
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 4)
    changed = CUSTOMERS.replace(b"ada@example.com", b"ada@lovelace.org")
    changed_id, third = await load(harness, account, changed)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    records = await all_records(harness, account.id)
    assert records["C1"].fields["email"] == "ada@lovelace.org"
    assert records["C1"].file_id == str(changed_id)
    assert records["C2"].file_id == str(first)


async def test_unreadable_files_fail_alone_with_the_reason(harness):
    account = await new_account(harness)
    broken_bytes = (HEADER + GOOD_ROWS).encode() + b"C3,D1,B\xffb,Bad,b@example.com,,M,GB\n"
    elsewhere = await new_account(harness)
    invalid_file, invalid = await load(harness, elsewhere, broken_bytes)
    assert invalid.status == "partially_loaded"  # the bad bytes reject their row, not the file
    assert invalid.reason == "1 of 3 rows rejected"
    assert (4, ["row 4: column 'first': bytes ff are not valid utf-8"]) in await rejects_of(
        harness, elsewhere.id, invalid_file
    )

    quoting = (HEADER + GOOD_ROWS + 'C3,D1,"Bob"by,Smith,b@example.com,,M,GB\n').encode()
    _, broken = await load(harness, account, quoting)
    assert broken.status == "failed" and broken.reason.startswith("line 4: ")

    semicolons = CUSTOMERS.replace(b",", b";")
    _, delimited = await load(harness, account, semicolons)
    assert delimited.status == "failed"
    assert "missing columns 'id', 'dealer'" in delimited.reason
    assert "seems delimited by ';'" in delimited.reason

    unknown_header = CUSTOMERS.replace(b"mail", b"email", 1)
    _, unknown = await load(harness, account, unknown_header, source_schema="no-such-schema")
    assert unknown.status == "quarantined"
    assert unknown.reason.startswith(
        "source schema 'no-such-schema' does not exist; the header matches no source schema"
    )
    # Nothing of the failed files stayed; the next file loads.
    assert await all_records(harness, account.id) == {}
    _, good = await load(harness, account, CUSTOMERS)
    assert (good.status, good.created) == ("partially_loaded", 3)


async def test_an_empty_file_fails_and_a_header_only_file_loads_nothing(harness):
    account = await new_account(harness)
    _, empty = await load(harness, account, b"")
    assert (empty.status, empty.reason) == ("failed", "the file is empty (no header line)")
    _, header_only = await load(harness, account, HEADER.encode())
    assert (header_only.status, header_only.rows_total) == ("loaded", 0)


async def test_a_file_of_only_bad_rows_fails_and_keeps_its_rejects(harness):
    account = await new_account(harness)
    file_id, completed = await load(harness, account, (HEADER + BAD_ROWS).encode())
    assert (completed.status, completed.reason) == ("failed", "no row loaded; see rejects")
    assert completed.rejected == 4
    assert [row for row, _ in await rejects_of(harness, account.id, file_id)] == [2, 3, 4, 5]


async def test_a_crash_mid_load_rolls_back_and_the_redelivery_loads_cleanly(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    harness.files.crashes[file_id] = 1
    await harness.publish(file_received(account, file_id))
    completed = await harness.wait_for("canopy.canonical.load.completed", file_id, seconds=30)
    assert harness.files.crashes[file_id] == 0
    assert (completed.created, completed.unchanged, completed.rejected) == (3, 0, 4)
    assert len(await rejects_of(harness, account.id, file_id)) == 4


# Isolation


async def test_second_account_sees_nothing_of_the_first(harness):
    account = await new_account(harness)
    file_id, _ = await load(harness, account, CUSTOMERS)
    other = uuid.uuid4()
    assert await all_records(harness, other) == {}
    schemas = await harness.stub.ListSourceSchemas(
        canonical_pb2.ListSourceSchemasRequest(), metadata=harness.meta(other)
    )
    assert list(schemas.source_schemas) == []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rejects_of(harness, other, file_id)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_tenant_scoped_callers_see_only_their_tenants_records(harness):
    account = await new_account(harness)
    await load(harness, account, CUSTOMERS)
    assert len(await all_records(harness, account.id, tenant_ids=[account.dealer])) == 3
    assert await all_records(harness, account.id, tenant_ids=[account.elsewhere]) == {}
    filtered = await harness.stub.ListRecords(
        canonical_pb2.ListRecordsRequest(schema="customer", tenant_id=str(account.elsewhere)),
        metadata=harness.meta(account.id),
    )
    assert list(filtered.records) == []


async def test_records_page_in_id_order(harness):
    account = await new_account(harness)
    await load(harness, account, CUSTOMERS)
    seen, token = [], ""
    for _ in range(3):
        page = await harness.stub.ListRecords(
            canonical_pb2.ListRecordsRequest(schema="customer", page_size=2, page_token=token),
            metadata=harness.meta(account.id),
        )
        seen += [r.source_id for r in page.records]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == ["C1", "C2", "C7"] and len(seen) == 3


async def test_app_role_without_context_sees_no_records(harness, config):
    account = await new_account(harness)
    await load(harness, account, CUSTOMERS)
    db = Database(config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.nothing()) as session:
            count = await session.execute(select(func.count()).select_from(records_table))
            assert count.scalar_one() == 0
        async with db.transaction(Scope.account(account.id)) as session:
            count = await session.execute(select(func.count()).select_from(records_table))
            assert count.scalar_one() == 3
    finally:
        await db.dispose()
