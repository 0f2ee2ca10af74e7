"""A large file mapped by worker processes, in small blocks, loads exactly as it would in one
process: the same records, rejects, reasons, line numbers and counts."""

import random
import re
import uuid
from collections.abc import AsyncIterator

import nats
import pytest

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.canonical.service_layer import parallel
from services.canonical.tests.fakes import FakeFiles, FakeKeys, FakeTenants
from services.canonical.tests.test_service import (
    HEADER,
    Account,
    Harness,
    all_records,
    customer_schema,
    file_received,
    new_account,
)
from services.runtime.events import unpack
from services.runtime.migrations import migrate
from tests.support import serving


@pytest.fixture(scope="module")
async def harness(runtime_config, tokens) -> AsyncIterator[Harness]:
    config = CanonicalConfig(
        **runtime_config.model_dump(),
        grpc_port=0,
        load_batch_size=50,
        load_workers=2,
        load_parallel_min_bytes=1,
        load_block_bytes=2048,
    )
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    files, tenants, keys = FakeFiles(chunk_size=1000), FakeTenants(), FakeKeys()
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


def messy_customers(rows: int = 3000, seed: int = 7) -> bytes:
    """Good rows, with quoted commas, quotes and line breaks, and every kind of bad row."""
    pick = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        first = pick.choice(["Ada", '"Ada, Countess"', '"Ada ""A."" L"', '"Ada\nLovelace"'])
        mail = f"ada{i}@example.com" if i % 97 else "not-an-email"
        last = "Lovelace" if i % 89 else ""
        dealer = "D1"
        if i == 2500:
            dealer = "D3"  # unknown, first seen late in the file
        elif i % 211 == 0:
            dealer = "D2"  # outside the drop zone's scope
        source_id = f"C{i}" if i % 500 != 499 else f"C{i - 400}"  # repeats an earlier row
        if i % 353 == 0:
            lines.append(f"{source_id},{dealer},short\n")
            continue
        lines.append(f"{source_id},{dealer},{first},{last},{mail},1815-12-10,F,gb\n")
    return "".join(lines).encode()


def received(account: Account, file_id: uuid.UUID, size: int) -> events_pb2.Event:
    event = file_received(account, file_id)
    payload = unpack(event, ingestion_pb2.FileReceived)
    payload.size_bytes = size  # 0: below the threshold, so mapped in this process
    event.payload.Pack(payload)
    return event


async def load_both_ways(h: Harness, data: bytes):
    """Load `data` into two accounts: once in worker processes, once in this process."""
    results = []
    for size in (len(data), 0):
        account = await new_account(h)
        file_id = h.files.add(account.id, data)
        await h.publish(received(account, file_id, size))
        completed = await h.wait_for("canopy.canonical.load.completed", file_id, seconds=60)
        results.append((account, file_id, completed))
    return results


async def every_reject(h: Harness, account_id: uuid.UUID, file_id: uuid.UUID):
    rejects, token = [], ""
    while True:
        page = await h.stub.ListRejects(
            canonical_pb2.ListRejectsRequest(file_id=str(file_id), page_size=500, page_token=token),
            metadata=h.meta(account_id),
        )
        rejects += [(r.row_number, list(r.reasons)) for r in page.rejects]
        token = page.next_page_token
        if not token:
            return rejects


async def every_record(h: Harness, account_id: uuid.UUID):
    records, token = {}, ""
    while True:
        page = await h.stub.ListRecords(
            canonical_pb2.ListRecordsRequest(schema="customer", page_size=500, page_token=token),
            metadata=h.meta(account_id),
        )
        records.update({r.source_id: dict(r.fields) for r in page.records})
        token = page.next_page_token
        if not token:
            return records


def counts(completed: canonical_pb2.LoadCompleted) -> tuple:
    return (
        completed.status,
        completed.reason,
        completed.rows_total,
        completed.created,
        completed.updated,
        completed.unchanged,
        completed.rejected,
    )


async def test_workers_load_a_messy_file_exactly_as_one_process_does(harness, monkeypatch):
    started = []
    original = parallel.ParallelMapping._start_workers

    def start_workers(self, buffer):
        started.append(self.count)
        return original(self, buffer)

    monkeypatch.setattr(parallel.ParallelMapping, "_start_workers", start_workers)
    data = messy_customers()
    (workers, file_w, in_workers), (alone, file_a, in_process) = await load_both_ways(harness, data)
    assert started == [2]  # the first load ran in two workers, the second in this process
    assert counts(in_workers) == counts(in_process)
    assert in_workers.status == "partially_loaded" and in_workers.rows_total == 3000
    assert in_workers.created > 2500
    assert await every_reject(harness, workers.id, file_w) == await every_reject(
        harness, alone.id, file_a
    )
    records = await every_record(harness, workers.id)
    assert records == await every_record(harness, alone.id)
    assert len(records) == in_workers.created
    rejects = dict(await every_reject(harness, workers.id, file_w))
    assert any("is unknown for source" in r for reasons in rejects.values() for r in reasons)
    assert any("is already on row" in r for reasons in rejects.values() for r in reasons)


async def test_loading_the_same_file_again_in_workers_changes_nothing(harness):
    account = await new_account(harness)
    data = messy_customers(rows=1500, seed=3)
    seen = []
    for _ in range(2):
        file_id = harness.files.add(account.id, data)
        await harness.publish(received(account, file_id, len(data)))
        seen.append(await harness.wait_for("canopy.canonical.load.completed", file_id, seconds=60))
    first, again = seen
    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    assert len(await all_records(harness, account.id)) == min(first.created, 500)


async def test_a_broken_block_fails_the_file_naming_the_same_line(harness):
    rows = messy_customers(rows=2000).decode().splitlines(keepends=True)
    rows[1500] = 'C1500,D1,"Bob"by,Smith,b@example.com,,M,GB\n'
    (workers, _, in_workers), (_, _, in_process) = await load_both_ways(
        harness, "".join(rows).encode()
    )
    assert in_workers.status == "failed"
    assert in_workers.reason == in_process.reason
    assert await all_records(harness, workers.id) == {}


async def test_an_unknown_header_is_quarantined_before_any_worker_starts(harness):
    data = messy_customers(rows=200).replace(b"mail", b"email", 1)
    (workers, _, in_workers), (_, _, in_process) = await load_both_ways(harness, data)
    assert in_workers.status == "quarantined" and "unexpected columns 'email'" in in_workers.reason
    assert in_workers.rows_total == 0
    assert await all_records(harness, workers.id) == {}
    assert in_workers.reason == in_process.reason


async def test_a_file_with_another_schemas_header_is_rerouted_in_workers_too(harness):
    text = messy_customers(rows=300).decode()
    text = text.replace("id,dealer,", "dealer,id,", 1)
    swapped = re.sub(r"^(C\d+),(D\d),", r"\2,\1,", text, flags=re.M)
    results = []
    for size in (len(swapped), 0):
        account = await new_account(harness)
        crm = customer_schema("crm-customers")
        crm.columns[:] = ["dealer", "id", "first", "last", "mail", "born", "sex", "country"]
        await harness.stub.CreateSourceSchema(crm, metadata=harness.meta(account.id))
        file_id = harness.files.add(account.id, swapped.encode())
        await harness.publish(received(account, file_id, size))
        results.append(await harness.wait_for("canopy.canonical.load.completed", file_id))
    in_workers, in_process = results
    assert in_workers.status == "partially_loaded" and in_workers.created > 200
    for name in ("status", "reason", "rows_total", "created", "rejected"):
        assert getattr(in_workers, name) == getattr(in_process, name)
