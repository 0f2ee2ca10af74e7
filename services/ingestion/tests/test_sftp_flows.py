"""Upload flows with a real asyncssh client: rename-commit, partial uploads, read-only folders,
quotas and tier sizes, receipts and rejects written back after a load, idle connections."""

import asyncio
import hashlib
import json
import os

import asyncssh
import pytest

from canopy.canonical.v1 import canonical_pb2
from canopy.ingestion.v1 import ingestion_pb2
from canopy.tenancy.v1 import tenancy_pb2
from devstack.ports import free_port
from services.ingestion.bootstrap import bootstrap
from services.ingestion.tests.helpers import (
    MIB,
    Account,
    Service,
    eventually,
    publish,
    published,
    sftp_client,
    sftp_connection,
    upload,
    wait_for_port,
)
from services.runtime.events import unpack
from tests.support import serving


async def signed_in(service: Service) -> tuple[Account, ingestion_pb2.DropZone, str]:
    account = service.account()
    zone = await account.dropzone()
    login = await account.login(zone)
    return account, zone, login.username


def partial_files(service: Service) -> list[str]:
    partial = service.config.storage_dir / ".partial"
    return sorted(p.name for p in partial.iterdir()) if partial.exists() else []


async def test_an_upload_under_a_temporary_name_counts_once_renamed_into_place(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    content = b"id;name\n1;Ada\n"
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_1.csv.filepart", content)
        assert await account.files(zone) == []  # closed, but not yet in place
        assert "customers_1.csv.filepart" in await sftp.listdir("incoming")
        assert (await sftp.stat("incoming/customers_1.csv.filepart")).size == len(content)
        await sftp.setstat("incoming/customers_1.csv.filepart", asyncssh.SFTPAttrs(mtime=1))
        await sftp.rename("incoming/customers_1.csv.filepart", "incoming/customers_1.csv")
        listing = await sftp.listdir("incoming")
        assert "customers_1.csv" in listing and "customers_1.csv.filepart" not in listing
    file = await account.file_named(zone, "customers_1.csv")
    assert file.sha256 == hashlib.sha256(content).hexdigest()
    assert file.status == ingestion_pb2.FILE_STATUS_RECEIVED
    assert [f.name for f in await account.files(zone)] == ["customers_1.csv"]
    assert partial_files(service) == []


async def test_posix_rename_commits_too(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_2.csv.part", b"1;Grace\n")
        await sftp.posix_rename("incoming/customers_2.csv.part", "incoming/customers_2.csv")
    assert (await account.file_named(zone, "customers_2.csv")).size_bytes == 8


async def test_renames_other_than_into_place_are_refused(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_3.csv.tmp", b"1;Ada\n")
        for old, new in (
            ("incoming/customers_3.csv.tmp", "../customers_3.csv"),
            ("incoming/customers_3.csv.tmp", "rejects/customers_3.csv"),
            ("incoming/customers_3.csv.tmp", "/customers_3.csv"),
            ("incoming/customers_3.csv.tmp", "incoming/other.filepart"),
            ("incoming/customers_3.csv.tmp", "incoming/sub/customers_3.csv"),
        ):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.rename(old, new)
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.rename("incoming/missing.filepart", "incoming/missing.csv")
    # the session ended without a rename into place: nothing recorded, nothing left over
    assert await account.files(zone) == []

    async def cleaned() -> None:
        assert partial_files(service) == []

    await eventually(cleaned)


async def test_a_client_may_give_up_on_a_temporary_upload_by_removing_it(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_4.csv.filepart", b"1;Ada\n")
        await sftp.remove("incoming/customers_4.csv.filepart")
        assert await sftp.listdir("incoming") == [".", ".."]
    assert await account.files(zone) == []
    assert partial_files(service) == []


async def test_an_empty_file_renamed_into_place_is_refused_and_not_recorded(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_5.csv.filepart", b"")
        with pytest.raises(asyncssh.SFTPFailure, match="empty file"):
            await sftp.rename("incoming/customers_5.csv.filepart", "incoming/customers_5.csv")
    assert await account.files(zone) == []
    assert partial_files(service) == []


async def test_receipts_and_rejects_are_read_only(service: Service) -> None:
    _, _, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        for folder in ("receipts", "rejects"):
            with pytest.raises(asyncssh.SFTPPermissionDenied, match="read-only"):
                await upload(sftp, f"{folder}/x.csv.json", b"forged")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.remove(f"{folder}/x.csv.json")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.mkdir(f"{folder}/d")
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.rmdir(folder)
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.chmod(folder, 0o777)
            assert await sftp.listdir(folder) == [".", ".."]
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.rmdir("incoming")
    assert partial_files(service) == []


async def test_a_write_past_the_byte_quota_fails_naming_it_and_leaves_nothing(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    await service.stub.UpdateDropZone(
        ingestion_pb2.UpdateDropZoneRequest(dropzone_id=zone.id, quota_bytes=1000),
        metadata=account.metadata(),
    )
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_a.csv", os.urandom(600))
        with pytest.raises(asyncssh.SFTPFailure, match="byte quota of 1000 bytes"):
            await upload(sftp, "customers_b.csv", os.urandom(600))
        assert partial_files(service) == []
    assert [f.name for f in await account.files(zone)] == ["customers_a.csv"]


async def test_an_upload_past_the_file_quota_is_refused_at_open(service: Service) -> None:
    account, zone, username = await signed_in(service)
    updated = await service.stub.UpdateDropZone(
        ingestion_pb2.UpdateDropZoneRequest(dropzone_id=zone.id, quota_files=1),
        metadata=account.metadata(),
    )
    assert (updated.quota_files, updated.quota_bytes) == (1, 0)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_a.csv", b"1\n")
        with pytest.raises(asyncssh.SFTPFailure, match="file quota of 1 files"):
            await upload(sftp, "customers_b.csv", b"2\n")
    assert len(await account.files(zone)) == 1
    assert partial_files(service) == []


async def test_quota_changes_apply_at_once_to_a_login_already_signed_in(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)

    async def set_quota_files(count: int) -> None:
        await service.stub.UpdateDropZone(
            ingestion_pb2.UpdateDropZoneRequest(dropzone_id=zone.id, quota_files=count),
            metadata=account.metadata(),
        )

    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_a.csv", b"1\n")
        await set_quota_files(1)  # lowered: the next file is refused, though begun
        with pytest.raises(asyncssh.SFTPFailure, match="file quota of 1 files"):
            await upload(sftp, "customers_b.csv", b"2\n")
        await set_quota_files(2)  # raised: the same session may upload one more at once
        await upload(sftp, "customers_b.csv", b"2\n")
        with pytest.raises(asyncssh.SFTPFailure, match="file quota of 2 files"):
            await upload(sftp, "customers_c.csv", b"3\n")
    assert sorted(f.name for f in await account.files(zone)) == [
        "customers_a.csv",
        "customers_b.csv",
    ]
    assert partial_files(service) == []


async def test_the_quota_holds_at_commit_for_uploads_begun_together(service: Service) -> None:
    account, zone, username = await signed_in(service)
    await service.stub.UpdateDropZone(
        ingestion_pb2.UpdateDropZoneRequest(dropzone_id=zone.id, quota_files=1),
        metadata=account.metadata(),
    )
    async with sftp_client(service.config, username) as sftp:
        first = await sftp.open("incoming/customers_a.csv", "wb")
        second = await sftp.open("incoming/customers_b.csv", "wb")
        await first.write(b"1\n")
        await second.write(b"2\n")
        await first.close()
        with pytest.raises(asyncssh.SFTPFailure, match="file quota"):
            await second.close()
    assert [f.name for f in await account.files(zone)] == ["customers_a.csv"]
    assert partial_files(service) == []


async def test_a_file_past_the_tiers_size_is_refused_and_a_bigger_tier_allows_it(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    big = os.urandom(4 * MIB)
    async with sftp_client(service.config, username) as sftp:
        with pytest.raises(asyncssh.SFTPFailure, match="standard tier's maximum file size"):
            await upload(sftp, "customers_big.csv", big)
        assert partial_files(service) == []
    assert await account.files(zone) == []

    await publish(
        service,
        "canopy.tenancy.account.created",
        tenancy_pb2.AccountCreated(account_id=str(account.id), slug="x", tier="professional"),
        account.id,
        by="tenancy",
    )

    async def uploads_as_professional() -> None:
        try:
            async with sftp_client(service.config, username) as sftp:
                await upload(sftp, "customers_big.csv", big)
        except asyncssh.SFTPFailure as error:
            raise AssertionError(str(error)) from None

    await eventually(uploads_as_professional)
    assert (await account.file_named(zone, "customers_big.csv")).size_bytes == len(big)


async def test_after_a_load_the_receipt_and_rejects_can_be_downloaded(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_r.csv", b"id;email\n1;ada@example.com\n2;nope\n3;\n")
    file = await account.file_named(zone, "customers_r.csv")
    rejects = b"row_number,column,reason,id\n3,email,not an email,2\n4,email,required,3\n"
    service.canonical.rejects[file.id] = rejects
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(
            file_id=file.id,
            status="partially_loaded",
            reason="2 rows rejected",
            rows_total=3,
            created=1,
            rejected=2,
        ),
        account.id,
    )
    written = await published(
        service.js,
        "canopy.ingestion.receipt.written",
        lambda e: e.account_id == str(account.id),
    )
    payload = unpack(written, ingestion_pb2.ReceiptWritten)
    assert isinstance(payload, ingestion_pb2.ReceiptWritten)
    assert (payload.receipt_name, payload.rejects_name) == (
        "customers_r.csv.json",
        "customers_r.csv.rejects.csv",
    )
    assert (file.id, frozenset({"canonical.rejects:export"})) in service.canonical.calls

    async with sftp_client(service.config, username) as sftp:
        assert await sftp.listdir("receipts") == [".", "..", "customers_r.csv.json"]
        assert await sftp.listdir("rejects") == [".", "..", "customers_r.csv.rejects.csv"]
        async with sftp.open("receipts/customers_r.csv.json", "rb") as remote:
            receipt = json.loads(await remote.read())
        async with sftp.open("rejects/customers_r.csv.rejects.csv", "rb") as remote:
            assert await remote.read() == rejects
        assert (await sftp.stat("rejects/customers_r.csv.rejects.csv")).size == len(rejects)
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open("receipts/customers_r.csv.json", "r+b")
    assert receipt["sha256"] == file.sha256
    assert receipt["bytes"] == file.size_bytes
    assert receipt["status"] == "partially_loaded"
    assert receipt["reason"] == "2 rows rejected"
    assert receipt["rows"] == {
        "total": 3,
        "loaded": 1,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 2,
    }
    assert receipt["rejects_file"] == "rejects/customers_r.csv.rejects.csv"


async def test_a_clean_load_gets_a_receipt_and_no_rejects(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_ok.csv", b"id\n1\n")
    file = await account.file_named(zone, "customers_ok.csv")
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(file_id=file.id, status="loaded", rows_total=1, created=1),
        account.id,
    )

    async def receipt_only() -> None:
        async with sftp_client(service.config, username) as sftp:
            assert await sftp.listdir("receipts") == [".", "..", "customers_ok.csv.json"]
            assert await sftp.listdir("rejects") == [".", ".."]

    await eventually(receipt_only)


async def test_an_idle_connection_is_closed_and_its_open_upload_discarded(
    service: Service, tokens: object
) -> None:
    account, zone, username = await signed_in(service)
    idle = service.config.model_copy(
        update={"sftp_port": free_port(), "sftp_idle_timeout_seconds": 0.5}
    )
    async with (
        bootstrap(idle, tenants=service.tenants) as app,
        serving(app, tokens) as _,  # type: ignore[arg-type]
    ):
        await wait_for_port(idle.sftp_host, idle.sftp_port)
        async with sftp_connection(idle, username) as conn:
            sftp = await conn.start_sftp_client()
            remote = await sftp.open("incoming/customers_idle.csv", "wb")
            await remote.write(b"1;Ada\n")
            await asyncio.wait_for(conn.wait_closed(), timeout=10)
    assert await account.files(zone) == []
    assert partial_files(service) == []


async def test_rejects_canonical_cannot_export_leave_a_receipt_saying_so(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_x.csv", b"id\n1\n2\n")
    file = await account.file_named(zone, "customers_x.csv")
    service.canonical.missing.add(file.id)
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(
            file_id=file.id, status="partially_loaded", rows_total=2, created=1, rejected=1
        ),
        account.id,
    )

    async def receipt_says_so() -> None:
        async with sftp_client(service.config, username) as sftp:
            assert await sftp.listdir("rejects") == [".", ".."]
            async with sftp.open("receipts/customers_x.csv.json", "rb") as remote:
                receipt = json.loads(await remote.read())
        assert receipt["rejects_file"] is None
        assert "could not be exported" in receipt["rejects_note"]

    await eventually(receipt_says_so)
