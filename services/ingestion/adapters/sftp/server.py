"""The SFTP server: password logins, each confined to its own drop zone, write-only uploads.

A login sees its drop zone as `/`, a flat, read-only listing of the files it received. All
it can do is upload: a file opened for writing goes to a hidden partial area (never inside the
zone), and becomes an ingested file only when the client closes it. Nothing here touches the
real file system by a client's path: every path is reduced to the zone or one name in it
(`domain.paths`), and links, renames, removals, directories and reads are refused, so no
sequence of requests can reach outside the zone (not even the symlink-and-rename escape of
asyncssh's own chroot).
"""

import asyncio
import logging
import stat
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncssh
from asyncssh.sftp import SFTPServerHandler

from services.ingestion.adapters.storage.files import LocalFileStore, Upload, UploadTooLarge
from services.ingestion.domain.files import IngestedFile
from services.ingestion.domain.logins import SftpSession
from services.ingestion.domain.paths import ROOT, OutsideZone, file_name, zone_entry
from services.ingestion.service_layer import logins, uploads
from services.ingestion.service_layer.ports import Ports
from services.runtime.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

# Authenticated encryption first; CTR (with its separate MAC) only for old clients.
ENCRYPTION_ALGS = [
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
MAX_OPEN_UPLOADS = 16
DIRECTORY_MODE = stat.S_IFDIR | 0o700
FILE_MODE = stat.S_IFREG | 0o600

# asyncssh calls SFTPServer.close() from two places: its handler of the client's
# SSH_FXP_CLOSE (after dropping the handle), and its session cleanup, for every handle still
# open when the session ends (a dropped connection, or a client that left without closing),
# just before exit(). Only the first finishes an upload, and nothing passed to close() tells
# them apart, so we check which of the two called.
_CLIENT_CLOSE = SFTPServerHandler._process_close.__code__


def _closed_by_client() -> bool:
    """Whether the close() being served (two frames up) is the client's own SSH_FXP_CLOSE."""
    return sys._getframe(2).f_code is _CLIENT_CLOSE


class SftpServer:
    """The listener, run as one of the service's loops; each connection signs in as one login."""

    def __init__(
        self,
        *,
        ports: Ports,
        store: LocalFileStore,
        host: str,
        port: int,
        host_key: asyncssh.SSHKey,
    ) -> None:
        self.ports = ports
        self.store = store
        self.host = host
        self.port = port
        self.host_key = host_key
        self.connections: set[asyncssh.SSHServerConnection] = set()

    async def run(self, stop: asyncio.Event) -> None:
        acceptor = await asyncssh.create_server(
            lambda: _Client(self),
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            encryption_algs=ENCRYPTION_ALGS,
            sftp_factory=self._sftp_session,
            allow_scp=False,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
            server_version="Canopy",
            login_timeout=60,
            keepalive_interval=60,
        )
        log.info(
            "sftp serving",
            extra={
                "fields": {
                    "address": f"{self.host}:{acceptor.get_port()}",
                    "host_key": self.host_key.get_fingerprint(),
                }
            },
        )
        try:
            await stop.wait()
        finally:
            acceptor.close()
            open_connections = list(self.connections)
            for conn in open_connections:
                conn.close()  # their open uploads are partial: discarded, never recorded
            if open_connections:
                await asyncio.wait(
                    [asyncio.ensure_future(c.wait_closed()) for c in open_connections], timeout=5
                )
            await acceptor.wait_closed()

    def _sftp_session(self, chan: asyncssh.SSHServerChannel) -> "ZoneSftp":
        client = chan.get_connection().get_owner()
        # asyncssh opens no session channel before authentication succeeded.
        assert isinstance(client, _Client) and client.session is not None
        return ZoneSftp(chan, ports=self.ports, store=self.store, session=client.session)


class _Client(asyncssh.SSHServer):
    """One SSH connection: signs in with a login's password, nothing else (no keys, shells,
    commands or forwarding)."""

    def __init__(self, server: SftpServer) -> None:
        self.server = server
        self.session: SftpSession | None = None
        self.source_address = ""
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self.source_address = str(peer[0]) if peer else ""
        self.server.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self.server.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        try:
            self.session = await logins.sign_in(
                ports=self.server.ports,
                username=username,
                password=password,
                source_address=self.source_address,
            )
        except Exception:
            log.exception("sftp sign-in failed", extra={"fields": {"username": username}})
            self.session = None
        return self.session is not None


@dataclass(eq=False)
class _OpenUpload:
    name: str
    upload: Upload


class ZoneSftp(asyncssh.SFTPServer):
    """One SFTP session of a signed-in login, confined to the login's drop zone."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        *,
        ports: Ports,
        store: LocalFileStore,
        session: SftpSession,
    ) -> None:
        super().__init__(chan)
        self.ports = ports
        self.store = store
        self.session = session
        self._uploads: set[_OpenUpload] = set()

    # Paths

    def _entry(self, path: bytes) -> str:
        try:
            return zone_entry(path.decode("utf-8"))
        except UnicodeDecodeError:
            raise asyncssh.SFTPPermissionDenied("path is not valid UTF-8") from None
        except OutsideZone as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None

    def _file_name(self, path: bytes) -> str:
        try:
            return file_name(path.decode("utf-8"))
        except UnicodeDecodeError:
            raise asyncssh.SFTPPermissionDenied("path is not valid UTF-8") from None
        except OutsideZone as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None

    def map_path(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("no file system paths here")

    def reverse_map_path(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("no file system paths here")

    def realpath(self, path: bytes) -> bytes:
        return b"/" + self._entry(path).encode()

    # Looking around: the zone and the files it received

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        name = self._entry(path)
        if name == ROOT:
            return _directory_attrs()
        file = await uploads.zone_file(ports=self.ports, session=self.session, name=name)
        if file is None:
            raise asyncssh.SFTPNoSuchFile(f"{name} is not in this drop zone")
        return _file_attrs(file)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        if self._entry(path) != ROOT:
            raise asyncssh.SFTPNoSuchFile("a drop zone has no subdirectories")
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=_directory_attrs())
        for file in await uploads.zone_listing(ports=self.ports, session=self.session):
            yield asyncssh.SFTPName(file.name.encode(), attrs=_file_attrs(file))

    # Uploading

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> _OpenUpload:
        name = self._file_name(path)
        if pflags & asyncssh.FXF_READ or not pflags & asyncssh.FXF_WRITE:
            raise asyncssh.SFTPPermissionDenied("files in a drop zone can be uploaded, not read")
        if pflags & asyncssh.FXF_APPEND:
            raise asyncssh.SFTPOpUnsupported("appending is not supported: upload the whole file")
        if len(self._uploads) >= MAX_OPEN_UPLOADS:
            raise asyncssh.SFTPFailure(f"at most {MAX_OPEN_UPLOADS} uploads at once")
        handle = _OpenUpload(name, await self.store.begin_upload())
        self._uploads.add(handle)
        return handle

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        raise asyncssh.SFTPOpUnsupported("use SFTP version 3")

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = self._handle(file_obj)
        try:
            await handle.upload.write(offset, data)
        except UploadTooLarge as error:
            raise asyncssh.SFTPFailure(str(error)) from None
        return len(data)

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        return asyncssh.SFTPAttrs(
            type=asyncssh.FILEXFER_TYPE_REGULAR,
            size=self._handle(file_obj).upload.size_bytes,
            permissions=FILE_MODE,
        )

    async def fsync(self, file_obj: object) -> None:
        self._handle(file_obj)  # flushed to disk when the client closes the file

    def close(self, file_obj: object) -> Awaitable[None]:
        if _closed_by_client():
            return self._finish(self._handle(file_obj))
        return self._abandon(self._handle(file_obj))

    async def _finish(self, handle: _OpenUpload) -> None:
        """The client closed the file: the upload is complete and becomes an ingested file."""
        self._uploads.discard(handle)
        try:
            await handle.upload.finish()
        except OSError:
            log.exception("upload could not be flushed", extra={"fields": self._fields(handle)})
            await handle.upload.discard()
            raise asyncssh.SFTPFailure("the upload could not be stored; upload it again") from None
        try:
            await uploads.receive_upload(
                ports=self.ports, session=self.session, name=handle.name, upload=handle.upload
            )
        except InvalidInput as error:
            raise asyncssh.SFTPFailure(str(error)) from None
        except NotFound as error:
            raise asyncssh.SFTPFailure(str(error)) from None
        except Exception:
            log.exception("upload could not be recorded", extra={"fields": self._fields(handle)})
            raise asyncssh.SFTPFailure(
                "the upload could not be recorded; upload it again"
            ) from None

    async def _abandon(self, handle: _OpenUpload) -> None:
        """The session ended with the file open: a partial upload, never processed."""
        self._uploads.discard(handle)
        await handle.upload.discard()
        log.info("partial upload discarded", extra={"fields": self._fields(handle)})

    async def exit(self) -> None:
        for handle in list(self._uploads):
            await self._abandon(handle)

    def _handle(self, file_obj: object) -> _OpenUpload:
        if not isinstance(file_obj, _OpenUpload):
            raise asyncssh.SFTPInvalidHandle("not an upload")
        return file_obj

    def _fields(self, handle: _OpenUpload) -> dict[str, str]:
        return {
            "login_id": str(self.session.login_id),
            "dropzone_id": str(self.session.dropzone_id),
            "name": handle.name,
        }

    # Attributes: kept fixed, so setting times or modes is accepted and ignored.

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._entry(path)
        _refuse_resize(attrs)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        self._handle(file_obj)
        _refuse_resize(attrs)

    # Everything else is refused.

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        raise asyncssh.SFTPPermissionDenied("files in a drop zone can be uploaded, not read")

    def remove(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("files in a drop zone cannot be removed")

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("files in a drop zone cannot be renamed")

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("files in a drop zone cannot be renamed")

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied("a drop zone has no subdirectories")

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("a drop zone has no subdirectories")

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("a drop zone has no links")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed in a drop zone")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are not allowed in a drop zone")

    def lock(self, file_obj: object, offset: int, length: int, flags: int) -> None:
        raise asyncssh.SFTPOpUnsupported("locking is not supported")

    def unlock(self, file_obj: object, offset: int, length: int) -> None:
        raise asyncssh.SFTPOpUnsupported("locking is not supported")

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("statvfs is not supported")

    def fstatvfs(self, file_obj: object) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("statvfs is not supported")


def _refuse_resize(attrs: asyncssh.SFTPAttrs) -> None:
    if attrs.size is not None:
        raise asyncssh.SFTPOpUnsupported("files in a drop zone cannot be truncated")


def _directory_attrs() -> asyncssh.SFTPAttrs:
    now = int(datetime.now(UTC).timestamp())
    return asyncssh.SFTPAttrs(
        type=asyncssh.FILEXFER_TYPE_DIRECTORY, permissions=DIRECTORY_MODE, atime=now, mtime=now
    )


def _file_attrs(file: IngestedFile) -> asyncssh.SFTPAttrs:
    received = int(file.received_at.timestamp())
    return asyncssh.SFTPAttrs(
        type=asyncssh.FILEXFER_TYPE_REGULAR,
        size=file.size_bytes,
        permissions=FILE_MODE,
        atime=received,
        mtime=received,
    )
