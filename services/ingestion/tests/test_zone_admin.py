"""Admin actions on files and zones through the real API: reprocess and retry, a zone's status
and lateness against its schedule, and callers limited to some tenants."""

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from canopy.canonical.v1 import canonical_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.adapters.db import tables
from services.ingestion.service_layer.dropzones import check_lateness, dropzone_status
from services.ingestion.tests.helpers import (
    Account,
    Service,
    all_published,
    eventually,
    publish,
    sftp_client,
    upload,
)
from services.runtime.db import Scope
from services.runtime.events import unpack
from tests.support import caller


async def zone_with_files(
    service: Service, *contents: tuple[str, bytes]
) -> tuple[Account, ingestion_pb2.DropZone, list[ingestion_pb2.IngestedFile]]:
    account = service.account()
    zone = await account.dropzone()
    login = await account.login(zone)
    async with sftp_client(service.config, login.username) as sftp:
        for name, content in contents:
            await upload(sftp, name, content)
    return account, zone, [await account.file_named(zone, name) for name, _ in contents]


async def complete(service: Service, account: Account, file_id: str, status: str) -> None:
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(file_id=file_id, status=status, rows_total=1, created=1),
        account.id,
    )

    async def done() -> None:
        current = await service.stub.GetFile(
            ingestion_pb2.GetFileRequest(file_id=file_id), metadata=account.metadata()
        )
        assert ingestion_pb2.FileStatus.Name(current.status) == f"FILE_STATUS_{status.upper()}"

    await eventually(done)


async def reprocessed_events(service: Service, file_id: str) -> list[ingestion_pb2.FileReceived]:
    events = await all_published(service.js, "canopy.ingestion.file.received")
    payloads = [unpack(e, ingestion_pb2.FileReceived) for e in events]
    return [p for p in payloads if p.file_id == file_id and p.reprocess]  # type: ignore[attr-defined]


async def test_retry_loads_a_failed_file_again_and_reprocess_a_duplicate_as_itself(
    service: Service,
) -> None:
    account, _, (failed, original, duplicate) = await zone_with_files(
        service,
        ("customers_f.csv", b"bad\n"),
        ("customers_o.csv", b"1;Ada\n"),
        ("customers_d.csv", b"1;Ada\n"),
    )
    assert duplicate.status == ingestion_pb2.FILE_STATUS_DUPLICATE
    await complete(service, account, failed.id, "failed")

    retried = await service.stub.RetryFile(
        ingestion_pb2.FileActionRequest(file_id=failed.id), metadata=account.metadata()
    )
    assert retried.status == ingestion_pb2.FILE_STATUS_RECEIVED

    again = await service.stub.ReprocessFile(
        ingestion_pb2.FileActionRequest(file_id=duplicate.id), metadata=account.metadata()
    )
    assert again.status == ingestion_pb2.FILE_STATUS_RECEIVED

    async def announced() -> None:
        for file in (failed, duplicate):
            (event,) = await reprocessed_events(service, file.id)
            assert event.source_schema == "dms_customers"
            assert event.sha256 == file.sha256

    await eventually(announced)
    # a duplicate reprocessed loads as itself: its load's outcome is its own
    await complete(service, account, duplicate.id, "loaded")


async def test_only_finished_files_can_be_loaded_again(service: Service) -> None:
    account, _, (received,) = await zone_with_files(service, ("customers_r.csv", b"1\n"))

    async def refused(rpc: object) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await rpc  # type: ignore[misc]
        return error.value

    request = ingestion_pb2.FileActionRequest(file_id=received.id)
    error = await refused(service.stub.ReprocessFile(request, metadata=account.metadata()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "received" in (error.details() or "")
    await complete(service, account, received.id, "loaded")
    error = await refused(service.stub.RetryFile(request, metadata=account.metadata()))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = await refused(
        service.stub.ReprocessFile(request, metadata=account.metadata(["ingestion.files:read"]))
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await refused(
        service.stub.ReprocessFile(request, metadata=service.account().metadata())
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await reprocessed_events(service, received.id) == []


async def test_a_zones_status_counts_what_waits_and_how_long_loads_take(service: Service) -> None:
    account, zone, (first, second) = await zone_with_files(
        service, ("customers_1.csv", b"1\n"), ("customers_2.csv", b"2\n")
    )
    await complete(service, account, first.id, "loaded")
    status = await service.stub.GetDropZoneStatus(
        ingestion_pb2.GetDropZoneStatusRequest(dropzone_id=zone.id), metadata=account.metadata()
    )
    assert status.listener == "up"
    assert status.files_waiting == 1
    assert (status.files_stored, status.bytes_stored) == (2, 4)
    assert status.last_file_name == "customers_2.csv"
    assert status.last_file_status == ingestion_pb2.FILE_STATUS_RECEIVED
    assert status.last_upload_at.seconds == second.received_at.seconds
    assert status.latency_sample_size == 1
    assert 0 < status.latency_p50_seconds <= status.latency_p95_seconds < 60
    assert not status.late and not status.HasField("next_deadline")


async def test_a_zone_without_files_in_its_window_is_late_and_reported_once(
    service: Service,
) -> None:
    account = service.account()
    zone = await account.dropzone()
    updated = await service.stub.UpdateDropZone(
        ingestion_pb2.UpdateDropZoneRequest(
            dropzone_id=zone.id,
            schedule=ingestion_pb2.ArrivalSchedule(expected_by="06:00", timezone="Europe/Berlin"),
        ),
        metadata=account.metadata(),
    )
    assert updated.schedule.expected_by == "06:00"
    # the window that ended before the schedule was set is not held against the zone
    status = await service.stub.GetDropZoneStatus(
        ingestion_pb2.GetDropZoneStatusRequest(dropzone_id=zone.id), metadata=account.metadata()
    )
    assert not status.late and status.HasField("next_deadline")

    later = datetime.now(UTC) + timedelta(days=2)
    async with service.ports() as ports:
        ctx = caller(account.id, ["ingestion.dropzones:read"])
        seen = await dropzone_status(
            ports=ports, ctx=ctx, dropzone_id=uuid.UUID(zone.id), now=later
        )
        assert seen.missed_deadline is not None
        await check_lateness(ports=ports, now=later)
        await check_lateness(ports=ports, now=later + timedelta(minutes=5))

    async def reported_once() -> None:
        events = await all_published(service.js, "canopy.ingestion.dropzone.late")
        mine = [e for e in events if e.account_id == str(account.id)]
        assert len(mine) == 1
        late = unpack(mine[0], ingestion_pb2.DropZoneLate)
        assert late.dropzone_id == zone.id  # type: ignore[attr-defined]
        assert late.deadline.ToDatetime(tzinfo=UTC) == seen.missed_deadline  # type: ignore[attr-defined]

    await eventually(reported_once)


async def test_bad_schedules_and_quotas_are_refused(service: Service) -> None:
    account = service.account()
    zone = await account.dropzone()
    for request in (
        ingestion_pb2.UpdateDropZoneRequest(
            dropzone_id=zone.id, schedule=ingestion_pb2.ArrivalSchedule(expected_by="6am")
        ),
        ingestion_pb2.UpdateDropZoneRequest(
            dropzone_id=zone.id,
            schedule=ingestion_pb2.ArrivalSchedule(expected_by="06:00", timezone="Nowhere/X"),
        ),
        ingestion_pb2.UpdateDropZoneRequest(dropzone_id=zone.id, quota_bytes=-1),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.UpdateDropZone(request, metadata=account.metadata())
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_tenant_scoped_caller_sees_only_zones_and_files_of_its_tenants(
    service: Service,
) -> None:
    account, mine, (my_file,) = await zone_with_files(service, ("customers_m.csv", b"m\n"))
    other_tenant = service.tenants.add(account.id)
    theirs = await service.stub.CreateDropZone(
        ingestion_pb2.CreateDropZoneRequest(
            name="other site",
            tenant_ids=[str(other_tenant)],
            routes=[ingestion_pb2.Route(pattern="*.csv", source_schema="x")],
        ),
        metadata=account.metadata(),
    )
    login = await account.login(theirs)
    async with sftp_client(service.config, login.username) as sftp:
        await upload(sftp, "theirs.csv", b"t\n")
    scoped = service.tokens.metadata(
        caller(
            account.id,
            ["ingestion.dropzones:read", "ingestion.files:read"],
            tenant_ids=[account.tenant_id],
        )
    )
    zones = await service.stub.ListDropZones(ingestion_pb2.ListDropZonesRequest(), metadata=scoped)
    assert [z.id for z in zones.dropzones] == [mine.id]
    files = await service.stub.ListFiles(ingestion_pb2.ListFilesRequest(), metadata=scoped)
    assert [f.id for f in files.files] == [my_file.id]
    their_file = await account.file_named(theirs, "theirs.csv")
    for rpc in (
        service.stub.GetDropZone(
            ingestion_pb2.GetDropZoneRequest(dropzone_id=theirs.id), metadata=scoped
        ),
        service.stub.GetFile(ingestion_pb2.GetFileRequest(file_id=their_file.id), metadata=scoped),
        service.stub.GetDropZoneStatus(
            ingestion_pb2.GetDropZoneStatusRequest(dropzone_id=theirs.id), metadata=scoped
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rpc
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND

    # the database's own policy holds even for a query that forgets the filter
    async with service.ports() as ports:
        scope = Scope(account.id, frozenset({account.tenant_id}))
        async with ports.db.transaction(scope) as session:
            zone_ids = (await session.execute(select(tables.dropzones.c.id))).scalars().all()
            file_ids = (await session.execute(select(tables.files.c.id))).scalars().all()
    assert [str(z) for z in zone_ids] == [mine.id]
    assert [str(f) for f in file_ids] == [my_file.id]
