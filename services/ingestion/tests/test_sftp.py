"""The SFTP server with a real asyncssh client: uploads, confinement, partial uploads, keys."""

import hashlib
import os
import stat
from pathlib import Path

import asyncssh
import grpc
import pytest

from canopy.ingestion.v1 import ingestion_pb2
from devstack.ports import free_port
from services.ingestion.bootstrap import bootstrap
from services.ingestion.tests.helpers import (
    Account,
    Service,
    all_published,
    eventually,
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


def partial_files(service: Service) -> list[Path]:
    partial = service.config.storage_dir / ".partial"
    return sorted(partial.iterdir()) if partial.exists() else []


def links_under(root: Path) -> list[Path]:
    return [
        Path(directory) / name
        for directory, dirs, files in os.walk(root)
        for name in [*dirs, *files]
        if (Path(directory) / name).is_symlink()
    ]


async def test_an_upload_is_recorded_with_its_hash_and_announced(service: Service) -> None:
    account = service.account()
    zone = await account.dropzone()
    login = await account.login(zone)
    content = b"id;name\n1;Ada\n2;Grace\n"
    async with sftp_client(service.config, login.username) as sftp:
        await upload(sftp, "customers_2026-11-21.csv", content)
        assert await sftp.listdir("/") == [".", "..", "incoming", "receipts", "rejects"]
        assert "customers_2026-11-21.csv" in await sftp.listdir("incoming")

    file = await account.file_named(zone, "customers_2026-11-21.csv")
    assert file.size_bytes == len(content)
    assert file.sha256 == hashlib.sha256(content).hexdigest()
    assert file.status == ingestion_pb2.FILE_STATUS_RECEIVED
    assert file.source_schema == "dms_customers"

    event = await published(
        service.js, "canopy.ingestion.file.received", lambda e: e.account_id == str(account.id)
    )
    payload = unpack(event, ingestion_pb2.FileReceived)
    assert isinstance(payload, ingestion_pb2.FileReceived)
    assert (payload.file_id, payload.dropzone_id, payload.sha256) == (file.id, zone.id, file.sha256)
    assert (payload.size_bytes, payload.source_schema) == (len(content), "dms_customers")
    assert list(payload.tenant_ids) == [str(account.tenant_id)]
    assert (event.actor.kind, event.actor.principal_id) == ("sftp_login", login.id)
    assert event.actor.source_address == "127.0.0.1"
    stored = service.config.storage_dir / str(account.id) / zone.id / ".files" / file.id
    assert stored.read_bytes() == content
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


async def test_the_same_content_again_is_a_duplicate_and_not_loaded_again(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    content = os.urandom(5000)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_1.csv", content)
        await upload(sftp, "customers_1_again.csv", content)
    original = await account.file_named(zone, "customers_1.csv")
    again = await account.file_named(zone, "customers_1_again.csv")
    assert again.status == ingestion_pb2.FILE_STATUS_DUPLICATE
    assert again.duplicate_of == original.id

    event = await published(
        service.js,
        "canopy.ingestion.file.status_changed",
        lambda e: e.account_id == str(account.id),
    )
    changed = unpack(event, ingestion_pb2.FileStatusChanged)
    assert isinstance(changed, ingestion_pb2.FileStatusChanged)
    assert (changed.file_id, changed.duplicate_of) == (again.id, original.id)
    assert changed.status == ingestion_pb2.FILE_STATUS_DUPLICATE
    received = await all_published(service.js, "canopy.ingestion.file.received")
    received_ids = {unpack(e, ingestion_pb2.FileReceived).file_id for e in received}  # type: ignore[attr-defined]
    assert original.id in received_ids
    assert again.id not in received_ids


async def test_a_file_no_route_matches_is_quarantined(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "holiday-photo.jpg", b"\xff\xd8\xff")
    file = await account.file_named(zone, "holiday-photo.jpg")
    assert file.status == ingestion_pb2.FILE_STATUS_QUARANTINED
    assert "holiday-photo.jpg" in file.status_reason
    event = await published(
        service.js,
        "canopy.ingestion.file.status_changed",
        lambda e: e.account_id == str(account.id),
    )
    changed = unpack(event, ingestion_pb2.FileStatusChanged)
    assert isinstance(changed, ingestion_pb2.FileStatusChanged)
    assert changed.status == ingestion_pb2.FILE_STATUS_QUARANTINED


async def test_writes_out_of_order_still_get_the_right_hash(service: Service) -> None:
    account, zone, username = await signed_in(service)
    blocks = [os.urandom(1000) for _ in range(4)]
    async with sftp_client(service.config, username) as sftp:
        async with sftp.open("incoming/customers_shuffled.csv", "wb") as remote:
            for index in (2, 0, 3, 1):
                await remote.write(blocks[index], index * 1000)
    file = await account.file_named(zone, "customers_shuffled.csv")
    assert file.sha256 == hashlib.sha256(b"".join(blocks)).hexdigest()
    assert file.size_bytes == 4000


async def test_large_writes_in_any_order_are_stored_and_hashed_exactly(service: Service) -> None:
    account, zone, username = await signed_in(service)
    blocks = [os.urandom(600 * 1024) for _ in range(4)]  # each written by a worker thread
    async with sftp_client(service.config, username) as sftp:
        async with sftp.open("incoming/customers_large.csv", "wb") as remote:
            for index in (0, 1, 3, 2):
                await remote.write(blocks[index], index * len(blocks[0]))
    file = await account.file_named(zone, "customers_large.csv")
    content = b"".join(blocks)
    assert file.sha256 == hashlib.sha256(content).hexdigest()
    assert file.size_bytes == len(content)
    stored = service.config.storage_dir / str(account.id) / zone.id / ".files" / file.id
    assert stored.read_bytes() == content


async def test_a_wrong_password_or_unknown_user_is_refused(service: Service) -> None:
    _, _, username = await signed_in(service)
    for user, password in ((username, "wrong password!"), ("nobody-here", "whatever-1234")):
        with pytest.raises(asyncssh.PermissionDenied):
            async with sftp_connection(service.config, user, password):
                pass


async def test_only_modern_ciphers_are_accepted(service: Service) -> None:
    _, _, username = await signed_in(service)
    with pytest.raises(asyncssh.KeyExchangeFailed):
        async with sftp_connection(service.config, username, encryption_algs=["aes256-cbc"]):
            pass
    async with sftp_connection(
        service.config, username, encryption_algs=["aes256-gcm@openssh.com"]
    ) as conn:
        assert conn.get_extra_info("send_cipher") == "aes256-gcm@openssh.com"


@pytest.mark.parametrize(
    "target",
    [
        "../x",
        "/etc/x",
        "../../etc/cron.d/x",
        "sub/x",
        "incoming/sub/x",
        "incoming/../../x",
        "x",
        "/x.csv",
        b"incoming/x\x00y",
        "incoming/x\ny",
        "incoming/x\ty",
        "incoming/CON",
        "incoming/nul.csv",
        "incoming/COM1.txt",
        "incoming/" + "n" * 256,
        "rejects/x.csv",
        "receipts/x.csv.json",
    ],
)
async def test_uploads_outside_the_zone_are_refused(
    service: Service, tmp_path: Path, target: str | bytes
) -> None:
    _, _, username = await signed_in(service)
    local = tmp_path / "x"
    local.write_bytes(b"escape")
    async with sftp_client(service.config, username) as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            if isinstance(target, bytes):
                await upload(sftp, target, b"escape")  # type: ignore[arg-type]
            else:
                await sftp.put(str(local), target)
    root = service.config.storage_dir
    assert not (root.parent / "x").exists()
    assert not (root / "x").exists()
    assert partial_files(service) == []


async def test_links_and_reading_links_are_refused(service: Service) -> None:
    _, _, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_link.csv", b"a;b\n")
        refused = [
            sftp.symlink("customers_link.csv", "l"),
            sftp.symlink("/etc/passwd", "l"),
            sftp.link("customers_link.csv", "hard"),
            sftp.readlink("customers_link.csv"),
            sftp.readlink("/etc/passwd"),
            sftp.readlink("../x"),
        ]
        for request in refused:
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await request
    assert links_under(service.config.storage_dir) == []


async def test_the_symlink_and_rename_escape_of_asyncssh_chroot_fails(service: Service) -> None:
    """asyncssh 2.24.1's chroot lets `d/l -> ../x` be created and renamed up a level, after
    which `l` points outside the root. Every step of that must be refused here."""
    _, _, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.mkdir("d")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("../x", "d/l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("../x", "l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.rename("d/l", "l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.posix_rename("d/l", "l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await upload(sftp, "l/../../x", b"escape")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await upload(sftp, "d/l/x", b"escape")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.symlink("../../x", "incoming/l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.mkdir("incoming/d")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.rename("incoming/d/l", "incoming/l")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.stat("l")
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.stat("incoming/l")
    assert links_under(service.config.storage_dir.parent) == []
    assert not (service.config.storage_dir.parent / "x").exists()


async def test_reading_removing_and_appending_are_refused(service: Service) -> None:
    _, _, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_kept.csv", b"a;b\n")
        kept = "incoming/customers_kept.csv"
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.open(kept, "rb")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.remove(kept)
        with pytest.raises(asyncssh.SFTPOpUnsupported):
            await sftp.open(kept, "ab")
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="chmod"):
            await sftp.chmod(kept, 0o644)
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="setuid"):
            await sftp.chmod(kept, 0o4755)
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="chown"):
            await sftp.chown(kept, 0, 0)
        with pytest.raises(asyncssh.SFTPPermissionDenied, match="setuid"):
            await sftp.open(
                "incoming/customers_suid.csv", "wb", asyncssh.SFTPAttrs(permissions=0o4777)
            )
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.rename(kept, "incoming/customers_renamed.csv")
        assert stat.S_IMODE((await sftp.stat(kept)).permissions or 0) == 0o600
    stored = service.config.storage_dir
    modes = {stat.S_IMODE(p.stat().st_mode) for p in stored.rglob("*") if p.is_file()}
    assert modes <= {0o600}


async def test_a_session_dropped_mid_upload_records_nothing_and_leaves_no_partial_file(
    service: Service,
) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_connection(service.config, username) as conn:
        sftp = await conn.start_sftp_client()
        remote = await sftp.open("incoming/customers_dropped.csv", "wb")
        await remote.write(os.urandom(100_000))
        assert len(partial_files(service)) == 1
        assert "customers_dropped.csv" not in await sftp.listdir("incoming")
        conn.abort()

    async def partial_removed() -> None:
        assert partial_files(service) == []

    await eventually(partial_removed)
    assert [f.name for f in await account.files(zone)] == []


async def test_a_session_ended_with_a_file_open_records_nothing(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        remote = await sftp.open("incoming/customers_left_open.csv", "wb")
        await remote.write(b"1;Ada\n")

    async def partial_removed() -> None:
        assert partial_files(service) == []

    await eventually(partial_removed)
    assert await account.files(zone) == []


async def test_an_empty_upload_is_refused_and_not_recorded(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        with pytest.raises(asyncssh.SFTPFailure, match="empty"):
            await upload(sftp, "customers_empty.csv", b"")
    assert await account.files(zone) == []
    assert partial_files(service) == []


async def test_a_login_sees_only_its_own_dropzone(service: Service) -> None:
    account = service.account()
    zone_a, zone_b = await account.dropzone(), await account.dropzone()
    login_a, login_b = await account.login(zone_a), await account.login(zone_b)
    async with sftp_client(service.config, login_a.username) as sftp:
        await upload(sftp, "customers_a.csv", b"a\n")
    async with sftp_client(service.config, login_b.username) as sftp:
        assert await sftp.listdir("incoming") == [".", ".."]
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            await sftp.stat("incoming/customers_a.csv")
        assert await sftp.realpath(".") == "/"
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.listdir("..")


async def test_the_content_of_a_file_streams_back_exactly_in_chunks(service: Service) -> None:
    account, zone, username = await signed_in(service)
    content = os.urandom(2 * 1024 * 1024 + 12345)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_big.csv", content)
    file = await account.file_named(zone, "customers_big.csv")
    chunks = [
        chunk.data
        async for chunk in service.stub.ReadFileContent(
            ingestion_pb2.ReadFileContentRequest(file_id=file.id), metadata=account.metadata()
        )
    ]
    assert [len(c) for c in chunks] == [1024 * 1024, 1024 * 1024, 12345]
    assert b"".join(chunks) == content


async def test_another_account_cannot_reach_a_file(service: Service) -> None:
    owner, zone, username = await signed_in(service)
    stranger = service.account()
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_private.csv", b"secret;row\n")
    file = await owner.file_named(zone, "customers_private.csv")

    for call in (
        service.stub.GetFile(
            ingestion_pb2.GetFileRequest(file_id=file.id), metadata=stranger.metadata()
        ),
        service.stub.GetDropZone(
            ingestion_pb2.GetDropZoneRequest(dropzone_id=zone.id), metadata=stranger.metadata()
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in service.stub.ReadFileContent(
            ingestion_pb2.ReadFileContentRequest(file_id=file.id), metadata=stranger.metadata()
        ):
            pass
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    everything = await service.stub.ListFiles(
        ingestion_pb2.ListFilesRequest(), metadata=stranger.metadata()
    )
    assert everything.files == []
    of_zone = await service.stub.ListFiles(
        ingestion_pb2.ListFilesRequest(dropzone_id=zone.id), metadata=stranger.metadata()
    )
    assert of_zone.files == []


async def test_reading_content_needs_the_service_permission(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_perm.csv", b"a\n")
    file = await account.file_named(zone, "customers_perm.csv")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        async for _ in service.stub.ReadFileContent(
            ingestion_pb2.ReadFileContentRequest(file_id=file.id),
            metadata=account.metadata(["ingestion.files:read"]),
        ):
            pass
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_files_are_listed_newest_first_in_pages(service: Service) -> None:
    account, zone, username = await signed_in(service)
    async with sftp_client(service.config, username) as sftp:
        for index in range(3):
            await upload(sftp, f"customers_{index}.csv", f"{index}\n".encode())
    first = await service.stub.ListFiles(
        ingestion_pb2.ListFilesRequest(dropzone_id=zone.id, page_size=2),
        metadata=account.metadata(),
    )
    rest = await service.stub.ListFiles(
        ingestion_pb2.ListFilesRequest(
            dropzone_id=zone.id, page_size=2, page_token=first.next_page_token
        ),
        metadata=account.metadata(),
    )
    names = [f.name for f in [*first.files, *rest.files]]
    assert names == ["customers_2.csv", "customers_1.csv", "customers_0.csv"]
    assert rest.next_page_token == ""


async def test_the_host_key_is_generated_once_and_kept_across_starts(
    service: Service, tokens: object
) -> None:
    _, _, username = await signed_in(service)
    async with sftp_connection(service.config, username) as conn:
        first = conn.get_server_host_key()
    key_file = service.config.host_key_path
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    again = service.config.model_copy(update={"sftp_port": free_port()})
    async with bootstrap(again, tenants=service.tenants) as app, serving(app, tokens) as _:  # type: ignore[arg-type]
        await wait_for_port(again.sftp_host, again.sftp_port)
        async with sftp_connection(again, username) as conn:
            second = conn.get_server_host_key()
    assert first is not None and second is not None
    assert first.public_data == second.public_data
