"""canonical's load events, published on the real JetStream, move a file's status."""

import uuid

from canopy.canonical.v1 import canonical_pb2
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.tests.helpers import (
    Account,
    Service,
    all_published,
    eventually,
    publish,
    published,
    sftp_client,
    upload,
)
from services.runtime.events import unpack


async def received_file(service: Service, name: str) -> tuple[Account, ingestion_pb2.IngestedFile]:
    account = service.account()
    zone = await account.dropzone()
    login = await account.login(zone)
    async with sftp_client(service.config, login.username) as sftp:
        await upload(sftp, name, uuid.uuid4().bytes * 100)
    return account, await account.file_named(zone, name)


async def status_of(service: Service, account: Account, file_id: str) -> ingestion_pb2.IngestedFile:
    return await service.stub.GetFile(
        ingestion_pb2.GetFileRequest(file_id=file_id), metadata=account.metadata()
    )


async def test_a_load_moves_a_file_to_processing_then_to_its_outcome(service: Service) -> None:
    account, file = await received_file(service, "customers_load.csv")

    await publish(
        service,
        "canopy.canonical.load.started",
        canonical_pb2.LoadStarted(file_id=file.id, source_schema="dms_customers"),
        account.id,
    )

    async def processing() -> None:
        current = await status_of(service, account, file.id)
        assert current.status == ingestion_pb2.FILE_STATUS_PROCESSING

    await eventually(processing)

    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(
            file_id=file.id,
            status="partially_loaded",
            reason="2 rows rejected",
            rows_total=10,
            created=5,
            updated=2,
            unchanged=1,
            rejected=2,
        ),
        account.id,
    )

    async def partially_loaded() -> None:
        current = await status_of(service, account, file.id)
        assert current.status == ingestion_pb2.FILE_STATUS_PARTIALLY_LOADED
        assert current.status_reason == "2 rows rejected"
        assert (
            current.rows_total,
            current.rows_created,
            current.rows_updated,
            current.rows_unchanged,
            current.rows_rejected,
        ) == (10, 5, 2, 1, 2)

    await eventually(partially_loaded)

    event = await published(
        service.js,
        "canopy.ingestion.file.status_changed",
        lambda e: (
            e.account_id == str(account.id)
            and unpack(e, ingestion_pb2.FileStatusChanged).status  # type: ignore[attr-defined]
            == ingestion_pb2.FILE_STATUS_PARTIALLY_LOADED
        ),
    )
    changed = unpack(event, ingestion_pb2.FileStatusChanged)
    assert isinstance(changed, ingestion_pb2.FileStatusChanged)
    assert (changed.file_id, changed.reason) == (file.id, "2 rows rejected")
    assert event.actor.principal_id == "service:ingestion"


async def test_events_for_unknown_files_foreign_accounts_or_bad_outcomes_change_nothing(
    service: Service,
) -> None:
    account, file = await received_file(service, "customers_skip.csv")
    skipped = [
        (canonical_pb2.LoadCompleted(file_id=str(uuid.uuid4()), status="loaded"), account.id),
        (canonical_pb2.LoadCompleted(file_id=file.id, status="vanished"), account.id),
        (canonical_pb2.LoadCompleted(file_id=file.id, status="quarantined"), uuid.uuid4()),
    ]
    for payload, account_id in skipped:
        await publish(service, "canopy.canonical.load.completed", payload, account_id)
    await publish(
        service,
        "canopy.canonical.load.started",
        canonical_pb2.LoadStarted(file_id=file.id),
        account.id,
    )
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(file_id=file.id, status="loaded", rows_total=3, created=3),
        account.id,
    )

    def change(event: events_pb2.Event) -> ingestion_pb2.FileStatusChanged:
        payload = unpack(event, ingestion_pb2.FileStatusChanged)
        assert isinstance(payload, ingestion_pb2.FileStatusChanged)
        return payload

    await published(
        service.js,
        "canopy.ingestion.file.status_changed",
        lambda e: (
            change(e).file_id == file.id and change(e).status == ingestion_pb2.FILE_STATUS_LOADED
        ),
    )
    changes = [
        change(e).status
        for e in await all_published(service.js, "canopy.ingestion.file.status_changed")
        if change(e).file_id == file.id
    ]
    assert changes == [ingestion_pb2.FILE_STATUS_PROCESSING, ingestion_pb2.FILE_STATUS_LOADED]
    current = await status_of(service, account, file.id)
    assert current.status == ingestion_pb2.FILE_STATUS_LOADED
    assert (current.rows_total, current.rows_created) == (3, 3)
