"""The SFTP server: logins by password or public key, each confined to its own drop zone.

A login sees `/` holding `incoming/` (upload only), `receipts/` and `rejects/` (download only)
and nothing else (`domain.paths`). A file opened for writing goes to a hidden partial area
(never inside the zone) and becomes an ingested file only when the client closes it
explicitly; an upload under a temporary name (`name.filepart`, `.part`, `.tmp`, ...) is held
when closed and counts only when the client renames it to its real name in `incoming/`
(plain `rename` or `posix-rename@openssh.com`). An empty upload is refused when it would count
(at close, or at its rename) with SFTP FAILURE "empty file: ..." and is recorded nowhere; so is
one past the zone's quotas or the account tier's file size, whose write fails at once, naming
the limit, and leaves no temporary file. Nothing here touches the real file system by
a client's path: links, directories, removals and renames out of that one flow are refused,
modes are fixed (chmod, chown and setuid bits are refused), so no sequence of requests can
reach outside the zone (not even the symlink-and-rename escape of asyncssh's own chroot).
"""

import asyncio
import logging
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import asyncssh
from asyncssh.sftp import SFTPServerHandler

from services.ingestion.adapters.db.repositories import ZoneDocument
from services.ingestion.adapters.storage.files import Document, LocalFileStore, Upload
from services.ingestion.domain.files import (
    IngestedFile,
    check_commit_rename,
    is_temporary_name,
)
from services.ingestion.domain.limits import LimitExceeded, UploadLimits
from services.ingestion.domain.logins import SftpSession
from services.ingestion.domain.paths import (
    READ_ONLY_FOLDERS,
    Folder,
    OutsideZone,
    ZonePath,
    file_path,
    upload_path,
    zone_path,
)
from services.ingestion.service_layer import logins, uploads
from services.ingestion.service_layer.ports import Ports
from services.runtime.errors import InvalidInput, NotFound, PreconditionFailed

log = logging.getLogger(__name__)
T = TypeVar("T")

# Authenticated encryption first; CTR (with its separate MAC) only for old clients; no CBC.
ENCRYPTION_ALGS = [
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
MAX_OPEN_FILES = 16
# How long a session trusts the zone's limits it read (or learnt from its own last commit)
# before reading them again. Only ever to let an upload start or grow: a refusal is always
# checked against fresh limits first, and every commit checks the exact limits under the
# zone's lock, so a stale copy can never let a file count past a quota.
LIMITS_TTL_SECONDS = 5.0
DIRECTORY_MODE = stat.S_IFDIR | 0o700
READ_ONLY_DIRECTORY_MODE = stat.S_IFDIR | 0o500
FILE_MODE = stat.S_IFREG | 0o600
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX

# asyncssh calls SFTPServer.close() from two places: its handler of the client's
# SSH_FXP_CLOSE (after dropping the handle), and its session cleanup, for every handle still
# open when the session ends (a dropped connection, or a client that left without closing),
# just before exit(). Only the first finishes an upload, and nothing passed to close() tells
# them apart, so we check which of the two called.
_CLIENT_CLOSE = SFTPServerHandler._process_close.__code__


def _closed_by_client() -> bool:
    """Whether the close() being served (two frames up) is the client's own SSH_FXP_CLOSE."""
    return sys._getframe(2).f_code is _CLIENT_CLOSE


@dataclass
class ListenerState:
    """The SFTP listener of this process (the SftpListener port): up or not, and who is on."""

    up: bool = False
    signed_in: dict[uuid.UUID, set[asyncssh.SSHServerConnection]] = field(default_factory=dict)

    def is_up(self) -> bool:
        return self.up

    def disconnect(self, login_id: uuid.UUID) -> int:
        connections = self.signed_in.pop(login_id, set())
        for conn in connections:
            conn.close()
        return len(connections)


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
        state: ListenerState,
        idle_timeout_seconds: float = 600,
        reuse_port: bool = False,
    ) -> None:
        self.ports = ports
        self.store = store
        self.host = host
        self.port = port
        self.host_key = host_key
        self.state = state
        self.idle_timeout_seconds = idle_timeout_seconds
        self.reuse_port = reuse_port
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
            kbdint_auth=False,
            server_version="Canopy",
            login_timeout=60,
            keepalive_interval=60,
            reuse_port=self.reuse_port or None,
        )
        self.state.up = True
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
            self.state.up = False
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
        return ZoneSftp(
            chan, ports=self.ports, store=self.store, session=client.session, touch=client.touch
        )


class _Client(asyncssh.SSHServer):
    """One SSH connection: signs in with a login's password or one of its public keys,
    nothing else (no shells, commands or forwarding); closed when idle too long."""

    def __init__(self, server: SftpServer) -> None:
        self.server = server
        self.session: SftpSession | None = None
        self._offered: SftpSession | None = None
        self.source_address = ""
        self._conn: asyncssh.SSHServerConnection | None = None
        self._last_activity = 0.0
        self._idle_watch: asyncio.Task[None] | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self.source_address = str(peer[0]) if peer else ""
        self.server.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_watch is not None:
            self._idle_watch.cancel()
        if self._conn is not None:
            self.server.connections.discard(self._conn)
            if self.session is not None:
                signed_in = self.server.state.signed_in.get(self.session.login_id)
                if signed_in is not None:
                    signed_in.discard(self._conn)
                    if not signed_in:
                        self.server.state.signed_in.pop(self.session.login_id, None)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        try:
            self._offered = await logins.sign_in(
                ports=self.server.ports,
                username=username,
                password=password,
                source_address=self.source_address,
            )
        except Exception:
            log.exception("sftp sign-in failed", extra={"fields": {"username": username}})
            self._offered = None
        return self._offered is not None

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        """Whether the key is one of the login's; asyncssh checks the signature after."""
        try:
            self._offered = await logins.key_sign_in(
                ports=self.server.ports,
                username=username,
                fingerprint=key.get_fingerprint("sha256"),
                source_address=self.source_address,
            )
        except Exception:
            log.exception("sftp key sign-in failed", extra={"fields": {"username": username}})
            self._offered = None
        return self._offered is not None

    async def auth_completed(self) -> None:
        self.session = self._offered
        assert self.session is not None and self._conn is not None
        self.server.state.signed_in.setdefault(self.session.login_id, set()).add(self._conn)
        self.touch()
        self._idle_watch = asyncio.create_task(self._close_when_idle())
        try:
            await logins.signed_in(ports=self.server.ports, session=self.session)
        except Exception:
            log.exception("sftp sign-in bookkeeping failed")
        log.info(
            "sftp signed in",
            extra={
                "fields": {
                    "login_id": str(self.session.login_id),
                    "method": self.session.method,
                    "source_address": self.source_address,
                }
            },
        )

    def touch(self) -> None:
        self._last_activity = asyncio.get_running_loop().time()

    async def _close_when_idle(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.server.idle_timeout_seconds
        while True:
            remaining = self._last_activity + timeout - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        log.info("sftp connection idle: closing", extra={"fields": {"idle_seconds": timeout}})
        if self._conn is not None:
            self._conn.close()


@dataclass(eq=False)
class _OpenUpload:
    name: str
    upload: Upload
    limits: UploadLimits
    # Set once a write went past a limit: the upload is gone and the handle only says why.
    refused: str = ""


@dataclass(eq=False)
class _OpenDocument:
    document: ZoneDocument
    content: Document


def _sftp_error(error: Exception) -> asyncssh.SFTPError:
    """Domain errors as the SFTP status a client shows its user."""
    if isinstance(error, OutsideZone):
        return asyncssh.SFTPPermissionDenied(str(error))
    if isinstance(error, LimitExceeded | InvalidInput | NotFound | PreconditionFailed):
        return asyncssh.SFTPFailure(str(error))
    return asyncssh.SFTPFailure("the request could not be served; try again")


class ZoneSftp(asyncssh.SFTPServer):
    """One SFTP session of a signed-in login, confined to the login's drop zone."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel,
        *,
        ports: Ports,
        store: LocalFileStore,
        session: SftpSession,
        touch: object = None,
    ) -> None:
        super().__init__(chan)
        self.ports = ports
        self.store = store
        self.session = session
        self._touch = touch if callable(touch) else (lambda: None)
        self._uploads: set[_OpenUpload] = set()
        self._documents: set[_OpenDocument] = set()
        # Closed uploads under a temporary name, waiting for their rename into place.
        self._staged: dict[str, Upload] = {}
        self._limits: UploadLimits | None = None
        self._limits_read_at = 0.0

    # Paths

    def _decode(self, path: bytes) -> str:
        self._touch()
        try:
            return path.decode("utf-8")
        except UnicodeDecodeError:
            raise asyncssh.SFTPPermissionDenied("paths must be valid UTF-8") from None

    def _path(self, path: bytes) -> ZonePath:
        try:
            return zone_path(self._decode(path))
        except OutsideZone as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None

    def _file(self, path: bytes) -> ZonePath:
        try:
            return file_path(self._decode(path))
        except OutsideZone as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None

    def _upload_name(self, path: bytes) -> str:
        try:
            return upload_path(self._decode(path))
        except OutsideZone as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None

    def map_path(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("no file system paths here")

    def reverse_map_path(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("no file system paths here")

    def realpath(self, path: bytes) -> bytes:
        return self._path(path).text().encode()

    # Looking around

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        target = self._path(path)
        if target.folder is None:
            return _directory_attrs(DIRECTORY_MODE)
        if target.name is None:
            read_only = target.folder in READ_ONLY_FOLDERS
            return _directory_attrs(READ_ONLY_DIRECTORY_MODE if read_only else DIRECTORY_MODE)
        if target.folder is Folder.INCOMING:
            staged = self._staged.get(target.name)
            if staged is not None:
                return _attrs(staged.size_bytes, datetime.now(UTC))
            file = await self._call(
                uploads.zone_file(ports=self.ports, session=self.session, name=target.name)
            )
            if file is None:
                raise asyncssh.SFTPNoSuchFile(f"incoming/{target.name} does not exist")
            return _file_attrs(file)
        document = await self._document(target)
        return _attrs(document.size_bytes, document.created_at)

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.stat(path)

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        target = self._path(path)
        if target.name is not None:
            raise asyncssh.SFTPFailure(f"{target.text()} is not a directory")
        for dot in (b".", b".."):
            yield asyncssh.SFTPName(dot, attrs=_directory_attrs(DIRECTORY_MODE))
        if target.folder is None:
            for folder in Folder:
                mode = READ_ONLY_DIRECTORY_MODE if folder in READ_ONLY_FOLDERS else DIRECTORY_MODE
                yield asyncssh.SFTPName(folder.value.encode(), attrs=_directory_attrs(mode))
        elif target.folder is Folder.INCOMING:
            for name, staged in self._staged.items():
                yield asyncssh.SFTPName(
                    name.encode(), attrs=_attrs(staged.size_bytes, datetime.now(UTC))
                )
            files = await self._call(uploads.zone_listing(ports=self.ports, session=self.session))
            for file in files:
                yield asyncssh.SFTPName(file.name.encode(), attrs=_file_attrs(file))
        else:
            documents = await self._call(
                uploads.document_listing(
                    ports=self.ports, session=self.session, folder=target.folder
                )
            )
            for document in documents:
                yield asyncssh.SFTPName(
                    document.name.encode(),
                    attrs=_attrs(document.size_bytes, document.created_at),
                )

    async def _document(self, target: ZonePath) -> ZoneDocument:
        assert target.folder is not None and target.name is not None
        document = await self._call(
            uploads.zone_document(
                ports=self.ports, session=self.session, folder=target.folder, name=target.name
            )
        )
        if document is None:
            raise asyncssh.SFTPNoSuchFile(f"{target.folder}/{target.name} does not exist")
        return document

    async def _call(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except asyncssh.SFTPError:
            raise
        except Exception as error:
            if not isinstance(error, LimitExceeded | InvalidInput | NotFound | PreconditionFailed):
                log.exception("sftp request failed", extra={"fields": self._fields()})
            raise _sftp_error(error) from None

    # Opening files: uploads into incoming/, downloads from receipts/ and rejects/

    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        _check_attrs(attrs, creating=True)
        if len(self._uploads) + len(self._documents) >= MAX_OPEN_FILES:
            raise asyncssh.SFTPFailure(f"at most {MAX_OPEN_FILES} files open at once")
        if pflags & asyncssh.FXF_WRITE:
            return await self._open_upload(path, pflags)
        if pflags & asyncssh.FXF_READ:
            return await self._open_document(path)
        raise asyncssh.SFTPPermissionDenied("open a file for reading or for writing")

    async def _open_document(self, path: bytes) -> _OpenDocument:
        target = self._file(path)
        if target.folder not in READ_ONLY_FOLDERS:
            raise asyncssh.SFTPPermissionDenied(
                "incoming/ is for uploading: received files cannot be read back"
            )
        document = await self._document(target)
        try:
            content = await self.store.open_document(document.storage_path)
        except FileNotFoundError:
            raise asyncssh.SFTPNoSuchFile(f"{target.text()} is no longer available") from None
        handle = _OpenDocument(document, content)
        self._documents.add(handle)
        return handle

    async def _open_upload(self, path: bytes, pflags: int) -> _OpenUpload:
        name = self._upload_name(path)
        if pflags & asyncssh.FXF_READ:
            raise asyncssh.SFTPPermissionDenied("uploads are written, not read back")
        if pflags & asyncssh.FXF_APPEND:
            raise asyncssh.SFTPOpUnsupported("appending is not supported: upload the whole file")
        limits = await self._zone_limits()
        try:
            limits.check_new_file()
        except LimitExceeded:
            limits = await self._zone_limits(fresh=True)
            try:
                limits.check_new_file()
            except LimitExceeded as error:
                raise asyncssh.SFTPFailure(str(error)) from None
        staged = self._staged.pop(name, None)
        if staged is not None:  # uploading the same temporary name again replaces it
            await staged.discard()
        handle = _OpenUpload(name, await self.store.begin_upload(), limits)
        self._uploads.add(handle)
        return handle

    async def _zone_limits(self, *, fresh: bool = False) -> UploadLimits:
        """The zone's limits as this session last knew them, read again when older than
        LIMITS_TTL_SECONDS or when `fresh` (before refusing anything)."""
        now = asyncio.get_running_loop().time()
        if fresh or self._limits is None or now - self._limits_read_at > LIMITS_TTL_SECONDS:
            self._limits = await self._call(
                uploads.upload_limits(ports=self.ports, session=self.session)
            )
            self._limits_read_at = now
        return self._limits

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        raise asyncssh.SFTPOpUnsupported("use SFTP version 3")

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        self._touch()
        if not isinstance(file_obj, _OpenDocument):
            raise asyncssh.SFTPPermissionDenied("uploads are written, not read back")
        return await file_obj.content.read(offset, size)

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        handle = self._upload(file_obj)
        if handle.refused:
            raise asyncssh.SFTPFailure(handle.refused)
        try:
            try:
                handle.limits.check_size(offset + len(data))
            except LimitExceeded:
                handle.limits = await self._zone_limits(fresh=True)
                handle.limits.check_size(offset + len(data))
            await handle.upload.write(offset, data)
        except LimitExceeded as error:
            await self._refuse(handle, str(error))
            raise asyncssh.SFTPFailure(handle.refused) from None
        except Exception as error:
            # UploadTooLarge (the service's absolute cap) or a disk error.
            await self._refuse(handle, f"the upload was refused: {error}")
            raise asyncssh.SFTPFailure(handle.refused) from None
        return len(data)

    async def _refuse(self, handle: _OpenUpload, reason: str) -> None:
        """Past a limit: drop the bytes at once; the handle keeps only the reason."""
        if not handle.refused:
            handle.refused = reason
            await handle.upload.discard()
            log.info("upload refused", extra={"fields": {**self._fields(handle), "reason": reason}})

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        self._touch()
        if isinstance(file_obj, _OpenDocument):
            return _attrs(file_obj.document.size_bytes, file_obj.document.created_at)
        return _attrs(self._upload(file_obj).upload.size_bytes, datetime.now(UTC))

    async def fsync(self, file_obj: object) -> None:
        # An upload is flushed to disk before it counts: at its close, or at its rename into
        # place when closed under a temporary name.
        self._touch()

    def close(self, file_obj: object) -> Awaitable[None]:
        if isinstance(file_obj, _OpenDocument):
            return self._close_document(file_obj)
        handle = self._upload(file_obj)
        if _closed_by_client():
            return self._finish(handle)
        return self._abandon(handle)

    async def _close_document(self, handle: _OpenDocument) -> None:
        self._documents.discard(handle)
        handle.content.close()

    async def _finish(self, handle: _OpenUpload) -> None:
        """The client closed the file: the upload is complete. Under a temporary name it waits
        for its rename; under its real name it becomes an ingested file now."""
        self._uploads.discard(handle)
        if handle.refused:
            raise asyncssh.SFTPFailure(handle.refused)
        try:
            await handle.upload.finish()
        except OSError:
            log.exception("upload could not be flushed", extra={"fields": self._fields(handle)})
            await handle.upload.discard()
            raise asyncssh.SFTPFailure("the upload could not be stored; upload it again") from None
        if is_temporary_name(handle.name):
            previous = self._staged.pop(handle.name, None)
            if previous is not None:
                await previous.discard()
            self._staged[handle.name] = handle.upload
            return
        await self._commit(handle.name, handle.upload)

    async def _commit(self, name: str, upload: Upload) -> None:
        try:
            _, self._limits = await uploads.receive_upload(
                ports=self.ports, session=self.session, name=name, upload=upload
            )
            self._limits_read_at = asyncio.get_running_loop().time()
        except (LimitExceeded, InvalidInput, NotFound, PreconditionFailed) as error:
            self._limits = None
            raise asyncssh.SFTPFailure(str(error)) from None
        except Exception:
            self._limits = None
            log.exception("upload could not be recorded", extra={"fields": self._fields()})
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
        for name, staged in list(self._staged.items()):
            await staged.discard()
            log.info(
                "upload never renamed into place discarded",
                extra={"fields": {**self._fields(), "name": name}},
            )
        self._staged.clear()
        for document in list(self._documents):
            await self._close_document(document)

    def _upload(self, file_obj: object) -> _OpenUpload:
        self._touch()
        if not isinstance(file_obj, _OpenUpload):
            raise asyncssh.SFTPPermissionDenied("downloads are read, not written")
        return file_obj

    def _fields(self, handle: _OpenUpload | None = None) -> dict[str, str]:
        fields = {
            "login_id": str(self.session.login_id),
            "dropzone_id": str(self.session.dropzone_id),
        }
        if handle is not None:
            fields["name"] = handle.name
        return fields

    # Renaming: only an upload under a temporary name, into its real name in incoming/

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        source, target = self._file(oldpath), self._file(newpath)
        if source.folder is not Folder.INCOMING or target.folder is not Folder.INCOMING:
            raise asyncssh.SFTPPermissionDenied(
                "files can only be renamed within incoming/, from a temporary name into place"
            )
        assert source.name is not None and target.name is not None
        if source.name not in self._staged:
            if await self._call(
                uploads.zone_file(ports=self.ports, session=self.session, name=source.name)
            ):
                raise asyncssh.SFTPPermissionDenied("a received file cannot be renamed")
            raise asyncssh.SFTPNoSuchFile(f"incoming/{source.name} does not exist")
        try:
            check_commit_rename(source.name, target.name)
        except PreconditionFailed as error:
            raise asyncssh.SFTPPermissionDenied(str(error)) from None
        upload = self._staged.pop(source.name)
        await self._commit(target.name, upload)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self.rename(oldpath, newpath)

    async def remove(self, path: bytes) -> None:
        target = self._file(path)
        if target.folder is Folder.INCOMING and target.name in self._staged:
            # A client giving up on an upload under a temporary name.
            await self._staged.pop(target.name).discard()
            return
        if target.folder in READ_ONLY_FOLDERS:
            raise asyncssh.SFTPPermissionDenied(f"{target.folder}/ is read-only")
        raise asyncssh.SFTPPermissionDenied("received files cannot be removed")

    # Attributes: modes and owners are fixed; times are accepted and ignored.

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        target = self._path(path)
        if target.folder in READ_ONLY_FOLDERS or target.name is None:
            raise asyncssh.SFTPPermissionDenied(f"{target.text()} cannot be changed")
        _check_attrs(attrs, creating=False)

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        self._upload(file_obj)
        _check_attrs(attrs, creating=False)

    # Everything else is refused.

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._path(path)
        raise asyncssh.SFTPPermissionDenied(
            "the folders of a drop zone are fixed (incoming, receipts, rejects)"
        )

    def rmdir(self, path: bytes) -> None:
        self._path(path)
        raise asyncssh.SFTPPermissionDenied(
            "the folders of a drop zone are fixed (incoming, receipts, rejects)"
        )

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


def _check_attrs(attrs: asyncssh.SFTPAttrs, *, creating: bool) -> None:
    """Owners and modes are the service's: chown, chmod and setuid/setgid/sticky bits are
    refused. A client's ordinary mode on create (OpenSSH sends its local file's) is ignored:
    every file is 0600."""
    if attrs.uid is not None or attrs.gid is not None or attrs.owner or attrs.group:
        raise asyncssh.SFTPPermissionDenied("file owners are fixed: chown is not allowed")
    if attrs.permissions is not None:
        if attrs.permissions & SPECIAL_BITS:
            raise asyncssh.SFTPPermissionDenied("setuid, setgid and sticky bits are not allowed")
        if not creating:
            raise asyncssh.SFTPPermissionDenied("file modes are fixed (0600): chmod is not allowed")
    if attrs.size is not None and not creating:
        raise asyncssh.SFTPOpUnsupported("files in a drop zone cannot be truncated")


def _directory_attrs(mode: int) -> asyncssh.SFTPAttrs:
    now = int(datetime.now(UTC).timestamp())
    return asyncssh.SFTPAttrs(
        type=asyncssh.FILEXFER_TYPE_DIRECTORY, permissions=mode, atime=now, mtime=now
    )


def _attrs(size: int, moment: datetime | None) -> asyncssh.SFTPAttrs:
    stamp = int((moment or datetime.now(UTC)).timestamp())
    return asyncssh.SFTPAttrs(
        type=asyncssh.FILEXFER_TYPE_REGULAR,
        size=size,
        permissions=FILE_MODE,
        atime=stamp,
        mtime=stamp,
    )


def _file_attrs(file: IngestedFile) -> asyncssh.SFTPAttrs:
    return _attrs(file.size_bytes, file.received_at)
