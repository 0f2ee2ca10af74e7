"""Integration tests of parsing, mapping versions, dry runs, search, reference data and the
rejects export: the canonical service on the real PostgreSQL and NATS, through gRPC.

Hostile files each arrive as a real `canopy.ingestion.file.received` event and must fail
alone with a readable reason, while the next good file of the same account still loads.
"""

import asyncio
import gzip
import io
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import nats
import pytest

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.adapters.db.repositories import (
    LoadRepository,
    RecordIndexRepository,
    RecordRepository,
    RejectRowRepository,
)
from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.canonical.domain.encryption import BlindIndexKey, FieldCipher
from services.canonical.domain.mapping import MappedRow, RejectRow
from services.canonical.domain.records import seal_record
from services.canonical.domain.schemas import VEHICLE
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
COLUMNS = ["id", "dealer", "first", "last", "mail", "sex"]
HEADER = ",".join(COLUMNS) + "\n"
GOOD = (
    HEADER + "C1,D1,Ada,Lovelace,ada@example.com,F\nC2,D1,Alan,Turing,alan@example.com,M\n"
).encode()


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

    def meta(self, account_id, permissions=ADMIN, **kwargs):
        return self.tokens.metadata(caller(account_id, permissions, **kwargs))

    async def completed(self, file_id: uuid.UUID, seconds: float = 30):
        for _ in range(int(seconds * 20)):
            for event in self.events:
                if event.type == "canopy.canonical.load.completed":
                    payload = unpack(event, canonical_pb2.LoadCompleted)
                    if payload.file_id == str(file_id):
                        return payload
            await asyncio.sleep(0.05)
        raise AssertionError(f"no load.completed for file {file_id}")


@pytest.fixture(scope="module")
def config(runtime_config) -> CanonicalConfig:
    config = CanonicalConfig(**runtime_config.model_dump(), grpc_port=0, load_batch_size=3)
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    return config


@pytest.fixture(scope="module")
async def harness(config, tokens) -> AsyncIterator[Harness]:
    files, tenants, keys = FakeFiles(chunk_size=4096), FakeTenants(), FakeKeys()
    nc = await nats.connect(config.nats_url)
    try:
        async with bootstrap(config, files=files, tenants=tenants, keys=keys) as app:
            async with serving(app, tokens) as channel:
                h = Harness(
                    stub=canonical_pb2_grpc.CanonicalServiceStub(channel),
                    tokens=tokens,
                    config=config,
                    js=nc.jetstream(),
                    files=files,
                    tenants=tenants,
                    keys=keys,
                )

                async def collect(msg):
                    h.events.append(events_pb2.Event.FromString(msg.data))

                await nc.subscribe("canopy.canonical.>", cb=collect)
                yield h
    finally:
        await nc.close()


@dataclass
class Account:
    id: uuid.UUID
    dealer: uuid.UUID
    schema: canonical_pb2.SourceSchema


def schema_request(**overrides) -> canonical_pb2.CreateSourceSchemaRequest:
    request = canonical_pb2.CreateSourceSchemaRequest(
        name="dms-customers",
        canonical_schema="customer",
        columns=COLUMNS,
        source_id_column="id",
        tenant_code_column="dealer",
        tenant_code_source=SOURCE,
        field_mappings=[
            canonical_pb2.FieldMapping(canonical_field="first_name", source_column="first"),
            canonical_pb2.FieldMapping(canonical_field="last_name", source_column="last"),
            canonical_pb2.FieldMapping(
                canonical_field="email", source_column="mail", transforms=["trim", "lower"]
            ),
            canonical_pb2.FieldMapping(
                canonical_field="gender", source_column="sex", value_map="genders"
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


async def new_account(h: Harness, **overrides) -> Account:
    account_id = uuid.uuid4()
    dealer = h.tenants.add(account_id, SOURCE, "D1")
    schema = await h.stub.CreateSourceSchema(
        schema_request(**overrides), metadata=h.meta(account_id)
    )
    return Account(account_id, dealer, schema)


async def load(h: Harness, account: Account, data: bytes, *, source_schema="dms-customers"):
    file_id = h.files.add(account.id, data)
    payload = ingestion_pb2.FileReceived(
        file_id=str(file_id),
        dropzone_id=str(uuid.uuid4()),
        name="customers.csv",
        size_bytes=len(data),
        sha256="0" * 64,
        source_schema=source_schema,
        tenant_ids=[str(account.dealer)],
    )
    event = new_event("canopy.ingestion.file.received", payload, account_id=account.id)
    await h.js.publish(event.type, event.SerializeToString())
    return file_id, await h.completed(file_id)


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


async def error_of(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


# Hostile files: each fails alone with its reason, and the next good file still loads.

HOSTILE = {
    "broken quoting": (GOOD + b'C3,D1,"Bob"by,Smith,b@example.com,M\n', "line 4: "),
    "10,000 columns": (
        (HEADER + ",".join(["x"] * 10_000) + "\n").encode(),
        "line 2: 10000 columns, more than the limit of 1000",
    ),
    "a 10 MB line": (GOOD + b"C3,D1," + b"x" * (10 << 20) + b"\n", "line 4: longer than"),
    "zip bomb": (zipped("bomb.csv", GOOD + b"0" * (64 << 20)), "expands more than 200 times"),
    "nested zip": (zipped("inner.zip", zipped("c.csv", GOOD)), "nested archives are refused"),
    "empty file": (b"", "the file is empty"),
    "unknown header": (b"what,ever\n1,2\n", "missing columns 'id'"),
    "duplicate header names": (
        (HEADER.replace("sex", "mail")).encode() + b"C1,D1,A,B,a@example.com,a@example.com\n",
        "duplicate columns 'mail'",
    ),
    "bom in the middle": (GOOD + b"\xef\xbb\xbf" + GOOD, "line 4: a byte order mark in the middle"),
    "nul bytes": (GOOD + b"C3,D1,A\x00,B,c@example.com,F\n", "line 4: a NUL character"),
    "utf-16 without bom": (GOOD.decode().encode("utf-16-le"), "NUL character"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_file_fails_alone_with_a_readable_reason(harness, case):
    data, reason = HOSTILE[case]
    account = await new_account(harness)
    _, outcome = await load(harness, account, data)
    assert outcome.status in ("failed", "quarantined"), outcome
    assert reason in outcome.reason
    _, good = await load(harness, account, GOOD)
    assert (good.status, good.created + good.unchanged) == ("loaded", 2)


async def test_wrong_encoding_rejects_only_the_rows_naming_the_column(harness):
    account = await new_account(harness)
    data = GOOD + "C3,D1,Jörg,Müller,j@example.com,M\n".encode("latin-1")
    file_id, outcome = await load(harness, account, data)
    assert (outcome.status, outcome.created, outcome.rejected) == ("partially_loaded", 2, 1)
    rejects = await harness.stub.ListRejects(
        canonical_pb2.ListRejectsRequest(file_id=str(file_id)), metadata=harness.meta(account.id)
    )
    (reject,) = rejects.rejects
    assert list(reject.reasons) == [
        "row 4: column 'first': bytes f6 are not valid utf-8",
        "row 4: column 'last': bytes fc are not valid utf-8",
    ]


async def test_ragged_rows_are_rejected_and_the_rest_load(harness):
    account = await new_account(harness)
    _, outcome = await load(harness, account, GOOD + b"C3,D1,short\n")
    assert (outcome.status, outcome.created, outcome.rejected) == ("partially_loaded", 2, 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + GOOD,
        GOOD.decode().encode("utf-16"),
        GOOD.replace(b"\n", b"\r\n"),
        gzip.compress(GOOD),
        zipped("customers.csv", GOOD),
    ],
    ids=["utf-8 bom", "utf-16 bom", "crlf", "gzip", "zip"],
)
async def test_good_files_in_other_shapes_load(harness, data):
    account = await new_account(harness)
    _, outcome = await load(harness, account, data)
    assert (outcome.status, outcome.created) == ("loaded", 2)


async def test_a_legacy_encoding_and_sniffed_delimiter_configured_on_the_schema(harness):
    account = await new_account(harness, encoding="cp1252", delimiter="auto")
    data = GOOD.decode().replace(",", ";").replace("Ada", "Zoë").encode("cp1252")
    _, outcome = await load(harness, account, data)
    assert (outcome.status, outcome.created) == ("loaded", 2)


async def test_a_header_only_file_loads_nothing_and_says_so(harness):
    account = await new_account(harness)
    _, outcome = await load(harness, account, HEADER.encode())
    assert (outcome.status, outcome.rows_total, outcome.reason) == (
        "loaded",
        0,
        "the file has a header but no rows",
    )


# Mapping versions


async def test_an_update_is_a_new_version_used_only_once_promoted(harness):
    account = await new_account(harness)
    meta = harness.meta(account.id)
    assert (account.schema.version, account.schema.latest_version) == (1, 1)
    mappings = list(account.schema.field_mappings)
    mappings[0] = canonical_pb2.FieldMapping(
        canonical_field="first_name", source_column="first", transforms=["upper"]
    )
    updated = await harness.stub.UpdateSourceSchema(
        canonical_pb2.UpdateSourceSchemaRequest(id=account.schema.id, field_mappings=mappings),
        metadata=meta,
    )
    assert (updated.version, updated.latest_version, updated.shown_version) == (1, 2, 2)
    assert updated.field_mappings[0].transforms == ["upper"]
    assert list(updated.columns) == COLUMNS  # left empty: kept

    current = await harness.stub.GetSourceSchema(
        canonical_pb2.GetSourceSchemaRequest(id=account.schema.id), metadata=meta
    )
    assert (current.shown_version, list(current.field_mappings[0].transforms)) == (1, [])
    second = await harness.stub.GetSourceSchema(
        canonical_pb2.GetSourceSchemaRequest(id=account.schema.id, version=2), metadata=meta
    )
    assert list(second.field_mappings[0].transforms) == ["upper"]

    file_id = harness.files.add(account.id, GOOD)
    preview = await harness.stub.PreviewSourceSchema(
        canonical_pb2.PreviewSourceSchemaRequest(id=account.schema.id, file_id=str(file_id)),
        metadata=meta,
    )
    assert preview.version == 2 and preview.rows[0].fields["first_name"] == "ADA"
    _, before = await load(harness, account, GOOD)
    diff = await harness.stub.DiffSourceSchema(
        canonical_pb2.DiffSourceSchemaRequest(id=account.schema.id, file_id=str(file_id)),
        metadata=meta,
    )
    assert (diff.version, diff.current_version, diff.rows_total) == (2, 1, 2)
    assert (diff.created, diff.changed, diff.unchanged, diff.rejected) == (0, 2, 0, 0)
    same = await harness.stub.DiffSourceSchema(
        canonical_pb2.DiffSourceSchemaRequest(
            id=account.schema.id, file_id=str(file_id), version=1
        ),
        metadata=meta,
    )
    assert (same.changed, same.unchanged) == (0, 2)

    promoted = await harness.stub.PromoteSourceSchema(
        canonical_pb2.PromoteSourceSchemaRequest(id=account.schema.id, version=2), metadata=meta
    )
    assert (promoted.version, promoted.latest_version) == (2, 2)
    _, after = await load(harness, account, GOOD)
    assert (before.created, after.updated) == (2, 2)
    # Each load names the mapping version it used.
    assert (before.source_schema_version, after.source_schema_version) == (1, 2)
    changes = [
        unpack(e, canonical_pb2.SourceSchemaChanged).change
        for e in harness.events
        if e.type == "canopy.canonical.source_schema.changed" and e.account_id == str(account.id)
    ]
    assert changes == ["version_added", "promoted"]


async def test_invalid_updates_and_unknown_versions_are_clear_errors(harness):
    account = await new_account(harness)
    meta = harness.meta(account.id)
    error = await error_of(
        harness.stub.UpdateSourceSchema(
            canonical_pb2.UpdateSourceSchemaRequest(id=account.schema.id, columns=["id", "x"]),
            metadata=meta,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tenant_code_column 'dealer' is not one of the columns" in error.details()
    error = await error_of(
        harness.stub.PromoteSourceSchema(
            canonical_pb2.PromoteSourceSchemaRequest(id=account.schema.id, version=7),
            metadata=meta,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Another account cannot see, change or dry-run it.
    other = harness.meta(uuid.uuid4())
    for call in (
        harness.stub.GetSourceSchema(
            canonical_pb2.GetSourceSchemaRequest(id=account.schema.id), metadata=other
        ),
        harness.stub.AddMissingFields(
            canonical_pb2.AddMissingFieldsRequest(id=account.schema.id), metadata=other
        ),
    ):
        assert (await error_of(call)).code() == grpc.StatusCode.NOT_FOUND
    reader = harness.meta(account.id, ["canonical.schemas:read"])
    error = await error_of(
        harness.stub.UpdateSourceSchema(
            canonical_pb2.UpdateSourceSchemaRequest(id=account.schema.id), metadata=reader
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_add_missing_fields_adds_unmapped_placeholders(harness):
    account = await new_account(harness)
    added = await harness.stub.AddMissingFields(
        canonical_pb2.AddMissingFieldsRequest(id=account.schema.id),
        metadata=harness.meta(account.id),
    )
    placeholders = [m.canonical_field for m in added.field_mappings if not m.source_column]
    assert "phone" in placeholders and "first_name" not in placeholders
    assert added.latest_version == 2 and list(added.columns) == COLUMNS
    again = await harness.stub.AddMissingFields(
        canonical_pb2.AddMissingFieldsRequest(id=account.schema.id),
        metadata=harness.meta(account.id),
    )
    assert again.latest_version == 2  # nothing missing: no new version


# Preview


async def test_preview_maps_a_sample_and_reports_unmapped_codes_without_writing(harness):
    account = await new_account(harness)
    rows = "".join(
        f"C{i},D1,N{i},L{i},n{i}@example.com,{'X' if i % 3 else 'M'}\n" for i in range(9)
    )
    file_id = harness.files.add(account.id, (HEADER + rows).encode())
    preview = await harness.stub.PreviewSourceSchema(
        canonical_pb2.PreviewSourceSchemaRequest(
            id=account.schema.id, file_id=str(file_id), rows=6
        ),
        metadata=harness.meta(account.id),
    )
    assert preview.rows_read == 6
    assert [r.source_id for r in preview.rows] == ["C0", "C3"]
    assert preview.rows[0].fields["email"] == "***"  # sensitive: never shown
    assert preview.rows[0].fields["gender"] == "male"
    (code,) = preview.unmapped_codes
    assert (code.field, code.value_map, code.code, code.count) == ("gender", "genders", "X", 4)
    assert list(code.sample_rows) == [3, 4, 6, 7]
    assert [r.row_number for r in preview.rejects] == [3, 4, 6, 7]
    assert list(preview.rejects[0].reason_columns) == ["sex"]
    listed = await harness.stub.ListRecords(
        canonical_pb2.ListRecordsRequest(schema="customer"), metadata=harness.meta(account.id)
    )
    assert list(listed.records) == []


async def test_preview_of_a_file_that_cannot_be_read_says_why(harness):
    account = await new_account(harness)
    meta = harness.meta(account.id)
    bad = harness.files.add(account.id, b"a;b\n1;2\n")
    error = await error_of(
        harness.stub.PreviewSourceSchema(
            canonical_pb2.PreviewSourceSchemaRequest(id=account.schema.id, file_id=str(bad)),
            metadata=meta,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "header does not match" in error.details()
    elsewhere = harness.files.add(uuid.uuid4(), GOOD)  # another account's file
    error = await error_of(
        harness.stub.PreviewSourceSchema(
            canonical_pb2.PreviewSourceSchemaRequest(id=account.schema.id, file_id=str(elsewhere)),
            metadata=meta,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


# Search by blind index


async def _store_vehicles(h: Harness, account_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    data_key = await h.keys.current(account_id=account_id)
    cipher = FieldCipher(data_key.key, data_key.version)
    index_key = BlindIndexKey.derive(data_key.key, data_key.version)
    rows = [
        MappedRow(2, "V1", "D1", {"vin": "WVWZZZ1JZ3W386752", "make": "VW", "model": "Golf"}),
        MappedRow(3, "V2", "D1", {"vin": "WBA3A5C51CF256651", "make": "BMW", "model": "3er"}),
    ]
    sealed = [
        seal_record(
            row,
            account_id=account_id,
            tenant_id=tenant_id,
            source=SOURCE,
            schema=VEHICLE,
            cipher=cipher,
            index_key=index_key,
        )
        for row in rows
    ]
    db = Database(h.config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.account(account_id)) as session:
            await RecordRepository(session).upsert(
                account_id=account_id, schema="vehicle", file_id=uuid.uuid4(), sealed=sealed
            )
            await RecordIndexRepository(session).put(
                account_id=account_id, schema="vehicle", sealed=sealed
            )
    finally:
        await db.dispose()


async def test_records_are_found_by_a_sensitive_field_through_the_blind_index(harness):
    account_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    await _store_vehicles(harness, account_id, tenant_id)

    async def search(field, equals, who=account_id, **kwargs):
        response = await harness.stub.ListRecords(
            canonical_pb2.ListRecordsRequest(schema="vehicle", field=field, equals=equals),
            metadata=harness.meta(who, **kwargs),
        )
        return [r.source_id for r in response.records]

    assert await search("vin", "wba3a5c51cf256651") == ["V2"]
    assert await search("vin", "WVWZZZ1JZ3W386752") == ["V1"]
    assert await search("vin", "WVWZZZ1JZ3W000000") == []
    assert await search("make", "VW") == ["V1"]
    assert await search("vin", "WVWZZZ1JZ3W386752", who=uuid.uuid4()) == []
    assert await search("vin", "WVWZZZ1JZ3W386752", tenant_ids=[uuid.uuid4()]) == []
    error = await error_of(search("registration", "x"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await error_of(search("vin", ""))
    assert "both field and equals" in error.details()


# Rejects export


async def test_export_rejects_streams_csv_with_only_non_sensitive_values(harness):
    account = await new_account(harness)
    file_id, _ = await load(harness, account, GOOD + b"C3,D1,Bob,,bob@secret.example,X\n")
    export = canonical_pb2.ExportRejectsRequest(file_id=str(file_id))
    meta = harness.meta(account.id, ["canonical.rejects:export"], kind="service")
    data = b"".join([c.data async for c in harness.stub.ExportRejects(export, metadata=meta)])
    text = data.decode()
    assert text.startswith("row_number,column,reason")
    assert "row 4: last_name: is required" in text
    assert "secret" not in text
    # Another account gets nothing of it; a person without the permission is refused.
    other = harness.meta(uuid.uuid4(), ["canonical.rejects:export"], kind="service")
    error = await error_of(harness.stub.ExportRejects(export, metadata=other).read())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await error_of(
        harness.stub.ExportRejects(export, metadata=harness.meta(account.id)).read()
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_export_rejects_has_a_line_per_reason_with_its_column(harness, config):
    account_id, file_id = uuid.uuid4(), uuid.uuid4()
    rows = [
        RejectRow(
            row_number=n,
            reasons=(f"row {n}: gender: bad", f"row {n}: tenant code 'X' is unknown"),
            reason_columns=("sex", "dealer"),
            value_columns=("id", "dealer", "sex"),
            values=(f"C{n}", "X", "?"),
        )
        for n in range(2, 1202)
    ]
    db = Database(config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.account(account_id)) as session:
            await LoadRepository(session).start(
                account_id=account_id, file_id=file_id, source_schema="dms-customers"
            )
            await RejectRowRepository(session).add(
                account_id=account_id, file_id=file_id, rows=rows
            )
    finally:
        await db.dispose()
    meta = harness.meta(account_id, ["canonical.rejects:export"], kind="service")
    chunks = [
        c.data
        async for c in harness.stub.ExportRejects(
            canonical_pb2.ExportRejectsRequest(file_id=str(file_id)), metadata=meta
        )
    ]
    lines = b"".join(chunks).decode().splitlines()
    assert lines[0] == "row_number,column,reason,id,dealer,sex"
    assert lines[1:3] == [
        "2,sex,row 2: gender: bad,C2,X,?",
        "2,dealer,row 2: tenant code 'X' is unknown,C2,X,?",
    ]
    assert len(lines) == 1 + 2 * 1200 and len(chunks) > 1


# Reference data


async def test_fixtures_load_idempotently_by_natural_key_and_are_read_by_anyone(harness):
    operator = harness.tokens.metadata(caller(None, ["canonical.fixtures:manage"], kind="operator"))
    suffix = os.urandom(3).hex().upper()
    marque = canonical_pb2.ReferenceItem(kind="marques", fixture_version=1)
    marque.data.update({"code": f"T{suffix}", "name": "Test marque", "country": "DE"})
    first = await harness.stub.LoadFixtures(
        canonical_pb2.LoadFixturesRequest(items=[marque]), metadata=operator
    )
    again = await harness.stub.LoadFixtures(
        canonical_pb2.LoadFixturesRequest(items=[marque]), metadata=operator
    )
    assert (first.created, again.created, again.updated, again.unchanged) == (1, 0, 0, 1)
    renamed = canonical_pb2.ReferenceItem(kind="marques", fixture_version=2)
    renamed.data.update({"code": f"T{suffix}", "name": "Renamed", "country": "DE"})
    recoded = canonical_pb2.ReferenceItem(kind="marques", fixture_version=2)
    recoded.data.update({"code": f"U{suffix}", "name": "Renamed", "country": "DE"})
    changed = await harness.stub.LoadFixtures(
        canonical_pb2.LoadFixturesRequest(items=[renamed, recoded]), metadata=operator
    )
    assert (changed.created, changed.updated) == (1, 1)  # a new natural key is a new row

    listed = await harness.stub.ListReferenceData(
        canonical_pb2.ListReferenceDataRequest(kind="marques"),
        metadata=harness.meta(uuid.uuid4(), []),
    )
    mine = {i.natural_key: i.data["name"] for i in listed.items if i.natural_key.endswith(suffix)}
    assert mine == {f"T{suffix}": "Renamed", f"U{suffix}": "Renamed"}

    person = harness.meta(uuid.uuid4(), ADMIN)
    error = await error_of(
        harness.stub.LoadFixtures(
            canonical_pb2.LoadFixturesRequest(items=[marque]), metadata=person
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await error_of(
        harness.stub.ListReferenceData(
            canonical_pb2.ListReferenceDataRequest(kind="planets"), metadata=person
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    dumped = await harness.stub.DumpFixtures(
        canonical_pb2.DumpFixturesRequest(kind="marques"), metadata=operator
    )
    assert {i.natural_key for i in dumped.items} >= {f"T{suffix}", f"U{suffix}"}


async def test_the_app_role_cannot_write_reference_data_directly(harness, config):
    db = Database(config.app_url(SCHEMA), pool_size=1)
    try:
        with pytest.raises(Exception, match="permission denied"):
            async with db.transaction(Scope.nothing()) as session:
                from sqlalchemy import text

                await session.execute(
                    text(
                        "INSERT INTO canonical.reference_data (id, kind, natural_key, data,"
                        " fixture_version) VALUES (gen_random_uuid(), 'marques', 'X', '{}', 1)"
                    )
                )
    finally:
        await db.dispose()
