"""Load jobs on the real PostgreSQL and NATS: queued from file.received, worked from the
CANOPY_JOBS work queue, retried, given up into `failed`, and readable through ListJobs/GetJob.
"""

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import grpc
import nats
import pytest

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.canonical.tests.fakes import FakeFiles, FakeKeys, FakeTenants
from services.canonical.tests.test_service import (
    ADMIN,
    CUSTOMERS,
    HEADER,
    Harness,
    all_records,
    file_received,
    new_account,
)
from services.runtime.events import unpack
from services.runtime.migrations import migrate
from tests.support import serving

JOBS = [*ADMIN, "canonical.jobs:read"]


class GatedFiles(FakeFiles):
    """Files whose reading stops halfway until the test opens the file's gate."""

    def __init__(self) -> None:
        super().__init__(chunk_size=64)
        self.gates: dict[uuid.UUID, asyncio.Event] = {}

    async def read(
        self, *, account_id: uuid.UUID, file_id: uuid.UUID
    ) -> AsyncGenerator[bytes, None]:
        gate = self.gates.get(file_id)
        sent = 0
        async for chunk in super().read(account_id=account_id, file_id=file_id):
            data = self.contents[(account_id, file_id)]
            if gate is not None and sent >= len(data) // 2:
                await gate.wait()
            sent += len(chunk)
            yield chunk


@pytest.fixture(scope="module")
async def harness(runtime_config, tokens) -> AsyncIterator[Harness]:
    config = CanonicalConfig(
        **runtime_config.model_dump(),
        grpc_port=0,
        load_batch_size=3,
        load_progress_rows=3,
        load_max_deliver=3,
        load_retry_seconds=0.2,
        load_ack_wait_seconds=6,
    )
    migrate(config, SCHEMA, MIGRATIONS_DIR)
    files, tenants, keys = GatedFiles(), FakeTenants(), FakeKeys()
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


async def jobs_of(h: Harness, account_id: uuid.UUID, **filters) -> list[canonical_pb2.Job]:
    response = await h.stub.ListJobs(
        canonical_pb2.ListJobsRequest(**filters), metadata=h.meta(account_id, JOBS)
    )
    return list(response.jobs)


async def wait_for_job(h, account_id, file_id, predicate, seconds: float = 20):
    for _ in range(int(seconds * 20)):
        jobs = await jobs_of(h, account_id, file_id=str(file_id))
        if jobs and predicate(jobs[0]):
            return jobs[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job of {file_id} never got there: {jobs}")


def completed_about(h: Harness, file_id: uuid.UUID) -> list[canonical_pb2.LoadCompleted]:
    return h.about("canopy.canonical.load.completed", canonical_pb2.LoadCompleted, file_id)


async def test_a_received_file_becomes_a_job_people_can_follow(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    await harness.publish(file_received(account, file_id))
    await harness.wait_for("canopy.canonical.load.completed", file_id)

    [job] = await jobs_of(harness, account.id)
    assert (job.kind, job.file_id, job.source_schema) == ("load", str(file_id), "dms-customers")
    assert (job.status, job.attempts, job.reprocess) == ("partially_loaded", 1, False)
    assert (job.rows_total, job.rows_processed) == (7, 7)
    assert (job.created, job.updated, job.unchanged, job.rejected) == (3, 0, 0, 4)
    assert job.reason == "4 of 7 rows rejected"
    assert job.started_at.seconds and job.finished_at.seconds
    fetched = await harness.stub.GetJob(
        canonical_pb2.GetJobRequest(id=job.id), metadata=harness.meta(account.id, JOBS)
    )
    assert fetched == job


async def test_progress_is_readable_while_the_job_runs(harness):
    account = await new_account(harness)
    rows = "".join(f"C{i},D1,Ada,Lovelace,ada{i}@example.com,,F,GB\n" for i in range(60))
    file_id = harness.files.add(account.id, (HEADER + rows).encode())
    harness.files.gates[file_id] = asyncio.Event()
    await harness.publish(file_received(account, file_id))

    running = await wait_for_job(
        harness, account.id, file_id, lambda j: j.status == "running" and j.rows_processed > 0
    )
    assert 0 < running.rows_processed < 60
    assert not completed_about(harness, file_id)
    harness.files.gates[file_id].set()
    done = await wait_for_job(harness, account.id, file_id, lambda j: j.status == "loaded")
    assert (done.rows_processed, done.created) == (60, 60)


async def test_a_job_that_keeps_failing_is_retried_then_failed_with_the_reason(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    harness.files.crashes[file_id] = 100  # ingestion goes away on every attempt
    await harness.publish(file_received(account, file_id))
    completed = await harness.wait_for("canopy.canonical.load.completed", file_id, seconds=30)

    assert completed.status == "failed"
    assert completed.reason.startswith("gave up after 3 attempts")
    assert "ConnectionError: ingestion went away" in completed.reason
    [job] = await jobs_of(harness, account.id)
    assert (job.status, job.attempts) == ("failed", 3)
    assert job.last_error == "ConnectionError: ingestion went away"
    assert await all_records(harness, account.id) == {}


async def test_a_passing_failure_is_retried_and_the_job_loads(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    harness.files.crashes[file_id] = 2
    await harness.publish(file_received(account, file_id))
    completed = await harness.wait_for("canopy.canonical.load.completed", file_id, seconds=30)
    assert (completed.status, completed.created, completed.rejected) == ("partially_loaded", 3, 4)
    [job] = await jobs_of(harness, account.id)
    assert (job.status, job.attempts) == ("partially_loaded", 3)
    assert job.last_error == "attempt 2 failed: ConnectionError: ingestion went away"
    assert len(completed_about(harness, file_id)) == 1


async def test_reprocess_loads_the_file_again_but_a_repeated_receipt_does_not(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    await harness.publish(file_received(account, file_id))
    await harness.wait_for("canopy.canonical.load.completed", file_id)

    # The same file announced again (a new event, no reprocess): no second job.
    await harness.publish(file_received(account, file_id))
    again = file_received(account, file_id)
    payload = unpack(again, ingestion_pb2.FileReceived)
    payload.reprocess = True
    again.payload.Pack(payload)
    await harness.publish(again)
    for _ in range(400):
        if len(completed_about(harness, file_id)) == 2:
            break
        await asyncio.sleep(0.05)
    first, second = completed_about(harness, file_id)
    assert (first.created, first.unchanged) == (3, 0)
    assert (second.status, second.created, second.unchanged, second.rejected) == (
        "partially_loaded",
        0,
        3,
        4,
    )
    jobs = await jobs_of(harness, account.id)
    assert [j.reprocess for j in jobs] == [True, False]  # newest first
    assert len(await all_records(harness, account.id)) == 3


async def test_jobs_need_the_permission_and_stay_in_their_account(harness):
    account = await new_account(harness)
    file_id = harness.files.add(account.id, CUSTOMERS)
    await harness.publish(file_received(account, file_id))
    await harness.wait_for("canopy.canonical.load.completed", file_id)
    [job] = await jobs_of(harness, account.id)

    other = uuid.uuid4()
    assert await jobs_of(harness, other) == []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.GetJob(
            canonical_pb2.GetJobRequest(id=job.id), metadata=harness.meta(other, JOBS)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListJobs(
            canonical_pb2.ListJobsRequest(), metadata=harness.meta(account.id, ADMIN)
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListJobs(
            canonical_pb2.ListJobsRequest(status="sleeping"),
            metadata=harness.meta(account.id, JOBS),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_jobs_page_newest_first_and_filter_by_status(harness):
    account = await new_account(harness)
    files = [harness.files.add(account.id, CUSTOMERS) for _ in range(3)]
    for file_id in files:
        await harness.publish(file_received(account, file_id))
    for file_id in files:
        await harness.wait_for("canopy.canonical.load.completed", file_id)
    seen, token = [], ""
    for _ in range(3):
        page = await harness.stub.ListJobs(
            canonical_pb2.ListJobsRequest(page_size=2, page_token=token),
            metadata=harness.meta(account.id, JOBS),
        )
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)
    assert len(await jobs_of(harness, account.id, status="partially_loaded")) == 3
    assert await jobs_of(harness, account.id, status="failed") == []
