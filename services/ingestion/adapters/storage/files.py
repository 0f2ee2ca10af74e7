"""Uploaded bytes on the local (or mounted) file system.

Unfinished uploads are written to `<root>/.partial/<random>`, outside every drop zone, hashing
(SHA-256) and counting while they are written. A finished upload is moved atomically into its
zone's store, `<root>/<account_id>/<dropzone_id>/.files/<file_id>`, which no client can reach.
Receipts and reject files the platform writes back go to `.../.documents/<document_id>` the
same way. Files and directories are private to the service's user (0600 and 0700), created
with O_NOFOLLOW and O_EXCL: no client path ever reaches this file system.
"""

import asyncio
import hashlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from services.ingestion.service_layer.ports import FinishedUpload

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
FILES_DIR = ".files"
DOCUMENTS_DIR = ".documents"
HASH_BLOCK = 1024 * 1024
# Writes up to this size are written and hashed on the event loop (tens of microseconds into
# the page cache), cheaper than a hop to a worker thread; bigger ones go to a thread.
INLINE_WRITE_BYTES = 64 * 1024
# Partial files older than this are left over from a crash and swept at start.
STALE_PARTIAL_SECONDS = 24 * 3600


class UploadTooLarge(Exception):
    pass


class Document:
    """A stored receipt or reject file opened for reading at any offset."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd: int | None = fd
        self.size_bytes = size

    async def read(self, offset: int, size: int) -> bytes:
        if self._fd is None:
            raise ValueError("the document is closed")
        return await asyncio.to_thread(os.pread, self._fd, size, offset)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Upload:
    """One upload being written. Offsets may arrive out of order (clients pipeline their
    writes); the running hash covers the contiguous prefix and the file is hashed again at
    the end only when the writes were not sequential."""

    def __init__(self, path: Path, fd: int, max_bytes: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._hashed = 0
        self._sequential = True
        self._size = 0
        self._digest = ""

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def sha256(self) -> str:
        if not self._digest:
            raise RuntimeError("the upload is not finished")
        return self._digest

    async def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > self._max_bytes:
            raise UploadTooLarge(f"files are limited to {self._max_bytes} bytes")
        if len(data) <= INLINE_WRITE_BYTES:
            self._write(offset, data)
        else:
            await asyncio.to_thread(self._write, offset, data)

    def _write(self, offset: int, data: bytes) -> None:
        assert self._fd is not None, "write after the upload ended"
        view = memoryview(data)
        position = offset
        while view:
            written = os.pwrite(self._fd, view, position)
            view = view[written:]
            position += written
        if self._sequential and offset == self._hashed:
            self._hash.update(data)
            self._hashed += len(data)
        else:
            self._sequential = False
        self._size = max(self._size, offset + len(data))

    async def finish(self) -> None:
        """Settle the digest; the upload can then be kept or discarded. Flushing to disk is
        `keep`'s: only a kept file needs it."""
        if not self._sequential or self._hashed != self._size:
            await asyncio.to_thread(self._hash_again)
        self._close()
        self._digest = self._hash.hexdigest()

    def _hash_again(self) -> None:
        assert self._fd is not None, "the upload already ended"
        self._hash = hashlib.sha256()
        os.lseek(self._fd, 0, os.SEEK_SET)
        while block := os.read(self._fd, HASH_BLOCK):
            self._hash.update(block)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def discard(self) -> None:
        await asyncio.to_thread(self._discard)

    def _discard(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)


class LocalFileStore:
    def __init__(self, root: Path, *, chunk_bytes: int, max_upload_bytes: int) -> None:
        self.root = root.resolve()
        self.partial = self.root / PARTIAL_DIR
        self.chunk_bytes = chunk_bytes
        self.max_upload_bytes = max_upload_bytes
        # Store directories known to exist (they are never removed while the service runs).
        self._directories: set[Path] = set()

    def prepare(self) -> None:
        """Create the store's directories and sweep partial files a crash left behind."""
        self.partial.mkdir(parents=True, exist_ok=True, mode=0o700)
        cutoff = time.time() - STALE_PARTIAL_SECONDS
        for leftover in self.partial.iterdir():
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)

    async def begin_upload(self) -> Upload:
        # Creating an empty file is one quick system call: no worker thread for it.
        return self._begin_upload()

    def _begin_upload(self) -> Upload:
        self._ensure_directory(self.partial)
        path = self.partial / uuid.uuid4().hex
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # the partial area went away under us: make it again
            self._directories.discard(self.partial)
            self._ensure_directory(self.partial)
            fd = os.open(path, flags, 0o600)
        return Upload(path, fd, self.max_upload_bytes)

    def partial_files(self) -> list[Path]:
        return sorted(self.partial.iterdir()) if self.partial.exists() else []

    async def keep(
        self,
        upload: FinishedUpload,
        *,
        account_id: uuid.UUID,
        dropzone_id: uuid.UUID,
        file_id: uuid.UUID,
    ) -> str:
        assert isinstance(upload, Upload), "only uploads begun here can be kept"
        relative = f"{account_id}/{dropzone_id}/{FILES_DIR}/{file_id}"
        await asyncio.to_thread(self._keep, upload.path, self.root / relative)
        return relative

    def _ensure_directory(self, directory: Path) -> None:
        if directory not in self._directories:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._directories.add(directory)

    def _keep(self, source: Path, target: Path) -> None:
        """Move a finished file into place, then flush it and its directory, so file and move
        survive a crash before the database records the file (the file's own flush does not
        cover its new directory entry). Flushing after the move lets a journaling file system
        commit both at once, leaving little for the directory's flush."""
        self._ensure_directory(target.parent)
        try:
            os.rename(source, target)
        except FileNotFoundError:  # the directory went away under us: make it again
            self._directories.discard(target.parent)
            self._ensure_directory(target.parent)
            os.rename(source, target)
        for path, flags in ((target, os.O_NOFOLLOW), (target.parent, os.O_DIRECTORY)):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def discard(self, upload: FinishedUpload) -> None:
        assert isinstance(upload, Upload), "only uploads begun here can be discarded"
        await upload.discard()

    async def write_document(
        self,
        chunks: AsyncIterator[bytes],
        *,
        account_id: uuid.UUID,
        dropzone_id: uuid.UUID,
        document_id: uuid.UUID,
    ) -> tuple[str, int]:
        upload = await self.begin_upload()
        try:
            offset = 0
            async for chunk in chunks:
                await asyncio.to_thread(upload._write, offset, chunk)
                offset += len(chunk)
            await upload.finish()
            relative = f"{account_id}/{dropzone_id}/{DOCUMENTS_DIR}/{document_id}"
            await asyncio.to_thread(self._keep, upload.path, self.root / relative)
        except BaseException:
            await asyncio.shield(upload.discard())
            raise
        return relative, upload.size_bytes

    async def open_document(self, storage_path: str) -> Document:
        """A stored document for reading; FileNotFoundError when it is gone."""
        return await asyncio.to_thread(self._open_document, self._path(storage_path))

    def _open_document(self, path: Path) -> Document:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return Document(fd, os.fstat(fd).st_size)

    async def remove(self, storage_path: str) -> None:
        await asyncio.to_thread(self._path(storage_path).unlink, missing_ok=True)

    async def read(self, storage_path: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, self._path(storage_path), "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, self.chunk_bytes):
                yield chunk
        finally:
            handle.close()

    def _path(self, storage_path: str) -> Path:
        path = (self.root / storage_path).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise FileNotFoundError(storage_path)
        return path
