"""Break-in attempts on what loads leave: a user limited to other tenants sees none of a
file's jobs or rejects, and another account's source schema id answers like an unknown one
in the dry runs (preview, diff), before any file is read."""

import uuid

import grpc
import pytest

from canopy.canonical.v1 import canonical_pb2
from services.canonical.domain.jobs import may_see_rejects
from services.canonical.tests import test_service
from services.canonical.tests.test_load_jobs import JOBS
from services.canonical.tests.test_service import ADMIN, CUSTOMERS, load, new_account

config = test_service.config  # the fixtures: a service on real PostgreSQL and NATS
harness = test_service.harness

READER = [*ADMIN, *JOBS, "canonical.rejects:export"]


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value.code()


async def _rejects(h, account_id, file_id, **scope):
    response = await h.stub.ListRejects(
        canonical_pb2.ListRejectsRequest(file_id=str(file_id)),
        metadata=h.meta(account_id, READER, **scope),
    )
    return list(response.rejects)


async def _export(h, account_id, file_id, **scope) -> bytes:
    chunks = h.stub.ExportRejects(
        canonical_pb2.ExportRejectsRequest(file_id=str(file_id)),
        metadata=h.meta(account_id, READER, **scope),
    )
    return b"".join([c.data async for c in chunks])


async def _jobs(h, account_id, **scope):
    response = await h.stub.ListJobs(
        canonical_pb2.ListJobsRequest(), metadata=h.meta(account_id, READER, **scope)
    )
    return list(response.jobs)


async def test_a_user_of_another_tenant_sees_no_jobs_or_rejects_of_the_file(harness):
    account = await new_account(harness)
    file_id, completed = await load(harness, account, CUSTOMERS)  # drop zone: the dealer
    assert completed.rejected == 4
    [job] = await _jobs(harness, account.id)

    # A user of the dealer (and another tenant) sees the job and the rejects.
    dealer = {"tenant_ids": [account.dealer, uuid.uuid4()]}
    assert [j.id for j in await _jobs(harness, account.id, **dealer)] == [job.id]
    assert len(await _rejects(harness, account.id, file_id, **dealer)) == 4
    assert b"row_number" in await _export(harness, account.id, file_id, **dealer)

    # A user of the account's other tenant sees nothing, exactly as for a file never loaded.
    for scope in ({"tenant_ids": [account.elsewhere]}, {"tenant_ids": []}):
        assert await _jobs(harness, account.id, **scope) == []
        got = await _code(
            harness.stub.GetJob(
                canonical_pb2.GetJobRequest(id=job.id),
                metadata=harness.meta(account.id, READER, **scope),
            )
        )
        assert got == grpc.StatusCode.NOT_FOUND
        for file in (file_id, uuid.uuid4()):
            assert await _code(_rejects(harness, account.id, file, **scope)) == (
                grpc.StatusCode.NOT_FOUND
            )
            assert await _code(_export(harness, account.id, file, **scope)) == (
                grpc.StatusCode.NOT_FOUND
            )


def test_rejects_are_shown_only_to_callers_holding_every_tenant_of_the_drop_zone():
    north, south = uuid.uuid4(), uuid.uuid4()
    assert may_see_rejects(None, frozenset())
    assert may_see_rejects(frozenset({north, south}), frozenset({north}))
    assert not may_see_rejects(frozenset({north}), frozenset({north, south}))
    assert not may_see_rejects(frozenset({north}), frozenset())


async def test_dry_runs_on_another_accounts_schema_answer_not_found(harness):
    account = await new_account(harness)
    file_id, _ = await load(harness, account, CUSTOMERS)
    mine = await harness.stub.ListSourceSchemas(
        canonical_pb2.ListSourceSchemasRequest(), metadata=harness.meta(account.id)
    )
    schema_id = mine.source_schemas[0].id
    # The wired file source and tenant directory: the owner's dry runs work.
    preview = await harness.stub.PreviewSourceSchema(
        canonical_pb2.PreviewSourceSchemaRequest(id=schema_id, file_id=str(file_id)),
        metadata=harness.meta(account.id),
    )
    assert preview.rows_read == 7
    diff = await harness.stub.DiffSourceSchema(
        canonical_pb2.DiffSourceSchemaRequest(id=schema_id, file_id=str(file_id)),
        metadata=harness.meta(account.id),
    )
    assert diff.unchanged == 3

    intruder = await new_account(harness)
    for schema in (schema_id, str(uuid.uuid4())):
        for call in (
            harness.stub.PreviewSourceSchema(
                canonical_pb2.PreviewSourceSchemaRequest(id=schema, file_id=str(file_id)),
                metadata=harness.meta(intruder.id),
            ),
            harness.stub.DiffSourceSchema(
                canonical_pb2.DiffSourceSchemaRequest(id=schema, file_id=str(file_id)),
                metadata=harness.meta(intruder.id),
            ),
        ):
            assert await _code(call) == grpc.StatusCode.NOT_FOUND
