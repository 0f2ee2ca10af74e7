"""Mapping a large file in worker processes, each turning blocks of it into staged lines.

Parsing, mapping, two AES-GCM encryptions, the blind index and JSON cost tens of microseconds
a row in Python, so one process cannot keep up with PostgreSQL's COPY. This process reads the
file's stream, checks its header, cuts the rest into blocks of about `block_bytes` at record
boundaries (a line break after an even number of quote characters: in a file quoted with '"'
and no escape character, a quoted line break always follows an odd number) and hands each
block, with the number of its first line, to the least busy worker. A worker parses, maps and
seals its block with the domain's functions and sends back COPY lines (bytes, never pickled
rows), which this process writes into the load's staging table. Tenant codes a worker has not
seen wait in the worker until this process resolved them (one call for all new codes of a
block) and sends them along with the worker's next block.

The staged rows are the same as a load in one process would stage, so the merge, the counts,
the rejects and their reasons are too; the first error in file order (by block) is the one
reported.
"""

import asyncio
import codecs
import multiprocessing
import queue
import re
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from services.canonical.domain.errors import FileFormatError
from services.canonical.domain.files import FileRecord, RecordParser
from services.canonical.domain.mapping import MappedRow, RowMapper
from services.canonical.domain.source_schemas import SourceSchemaDefinition
from services.canonical.service_layer.ports import DataKey
from services.canonical.service_layer.staging import RowStager

# Encodings in which a '"' or a line break byte is always that character.
SPLITTABLE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "cp1252", "latin-1"})
_UNSPLITTABLE_HEADS = (b"\x1f\x8b", b"PK\x03\x04", codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_LINE = re.compile(r"^line (\d+)")
# Blocks a worker may have waiting besides the one it works on.
_QUEUED_PER_WORKER = 1


def can_split(source: SourceSchemaDefinition) -> bool:
    """Whether files of this source schema may be cut into blocks by bytes alone."""
    dialect = source.dialect
    return (
        source.encoding in SPLITTABLE_ENCODINGS
        and dialect.quote == '"'
        and not dialect.escape
        and dialect.header
    )


def splittable_head(head: bytes) -> bool:
    """False for an archive or UTF-16 text, which only a parser of the whole stream reads."""
    return not head.startswith(_UNSPLITTABLE_HEADS)


@dataclass(frozen=True)
class WorkerSetup:
    account_id: uuid.UUID
    source: SourceSchemaDefinition
    allowed: frozenset[uuid.UUID]
    key: bytes
    key_version: int
    encoding: str
    delimiter: str


CheckHeader = Callable[[FileRecord, str], None]
Resolve = Callable[[set[str]], Awaitable[None]]


@dataclass
class _Worker:
    process: Any
    inbox: Connection
    outbox: Connection
    reader: threading.Thread
    # Messages for the worker: a thread sends them, since a send of a block waits until the
    # worker, busy with the one before, reads it.
    sends: "queue.SimpleQueue[tuple[Any, ...] | None]" = field(default_factory=queue.SimpleQueue)
    sender: threading.Thread | None = None
    busy: int = 0
    codes: dict[str, uuid.UUID | None] = field(default_factory=dict)

    def send(self, message: tuple[Any, ...]) -> None:
        self.sends.put(message)


class ParallelMapping:
    def __init__(
        self,
        *,
        account_id: uuid.UUID,
        source: SourceSchemaDefinition,
        allowed: frozenset[uuid.UUID],
        key: DataKey,
        workers: int,
        block_bytes: int,
        resolve: Resolve,
        tenant_of_code: dict[str, uuid.UUID | None],
        check_header: CheckHeader,
    ) -> None:
        self.account_id = account_id
        self.source = source
        self.allowed = allowed
        self.key = key
        self.count = workers
        self.block_bytes = block_bytes
        self.resolve = resolve
        self.tenant_of_code = tenant_of_code
        self.check_header = check_header
        self.header_seen = False
        self.rows = 0

    async def run(
        self, chunks: AsyncIterator[bytes], write: Callable[[bytes], Awaitable[None]]
    ) -> AsyncIterator[int]:
        """Stage every row of the file; yields the rows read so far as blocks come back."""
        self.write = write
        self.results: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.errors: dict[int, str] = {}
        self.workers: list[_Worker] = []
        buffer = bytearray()
        line = 1  # the number of the first line in `buffer`
        index = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                if not self.header_seen:
                    line = self._take_header(buffer, line, final=False)
                    if not self.header_seen:
                        continue
                    self._start_workers(buffer)
                while len(buffer) >= self.block_bytes and not self.errors:
                    cut = _record_boundary(buffer)
                    if cut is None:
                        break
                    block = bytes(buffer[:cut])
                    del buffer[:cut]
                    async for rows in self._send(index, line, block):
                        yield rows
                    line += block.count(b"\n")
                    index += 1
            if not self.header_seen:
                line = self._take_header(buffer, line, final=True)
                if not self.header_seen:
                    return
                self._start_workers(buffer)
            if buffer and not self.errors:
                async for rows in self._send(index, line, bytes(buffer)):
                    yield rows
            while any(worker.busy for worker in self.workers):
                yield await self._receive()
            if self.errors:
                raise FileFormatError(self.errors[min(self.errors)])
            for worker in self.workers:
                worker.send(("finish", self._codes_for(worker)))
            for _ in self.workers:
                result = await self.results.get()
                if result[0] != "final":
                    self._fail(result)
                await write(result[2])
        finally:
            await asyncio.to_thread(self._stop_workers)

    def _take_header(self, buffer: bytearray, line: int, *, final: bool) -> int:
        """Parse and check the header once it is complete; the line after it."""
        while buffer:
            cut = _first_record_boundary(buffer)
            if cut is None and not final:
                return line
            end = len(buffer) if cut is None else cut
            head = bytes(buffer[:end])
            parser = RecordParser.for_dialect(
                encoding=self.source.encoding, dialect=self.source.dialect
            )
            records = parser.feed(head) + parser.finish()
            del buffer[:end]
            if records:
                self.check_header(records[0], parser.delimiter)
                self.header_seen = True
                self.delimiter = parser.delimiter
                self.head = head
                return line + head.count(b"\n")
            line += head.count(b"\n")
        return line

    def _start_workers(self, buffer: bytearray) -> None:
        encoding = self.source.encoding
        if self.head.startswith(codecs.BOM_UTF8) or encoding == "utf-8-sig":
            encoding = "utf-8"  # the mark, if any, was at the start; the blocks have none
        setup = WorkerSetup(
            account_id=self.account_id,
            source=self.source,
            allowed=self.allowed,
            key=self.key.key,
            key_version=self.key.version,
            encoding=encoding,
            delimiter=self.delimiter,
        )
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for number in range(self.count):
            inbox_read, inbox = context.Pipe(duplex=False)
            outbox, outbox_write = context.Pipe(duplex=False)
            process = context.Process(
                target=work,
                args=(inbox_read, outbox_write, setup),
                name=f"canonical-load-worker-{number}",
                daemon=True,
            )
            process.start()
            inbox_read.close()
            outbox_write.close()
            worker = _Worker(process, inbox, outbox, threading.Thread(daemon=True))
            worker.reader = threading.Thread(
                target=_read, args=(worker, number, self.results, loop), daemon=True
            )
            worker.reader.start()
            worker.sender = threading.Thread(target=_write, args=(worker,), daemon=True)
            worker.sender.start()
            self.workers.append(worker)

    async def _send(self, index: int, line: int, block: bytes) -> AsyncIterator[int]:
        while min(w.busy for w in self.workers) > _QUEUED_PER_WORKER:
            yield await self._receive()
        worker = min(self.workers, key=lambda w: w.busy)
        worker.busy += 1
        worker.send(("block", index, line, block, self._codes_for(worker)))

    async def _receive(self) -> int:
        result = await self.results.get()
        kind, number = result[0], result[1]
        worker = self.workers[number]
        if kind == "done":
            _, _, _, rows, lines, unseen = result
            worker.busy -= 1
            await self.write(lines)
            self.rows += rows
            if unseen:
                await self.resolve(set(unseen))
                worker.codes.update({c: self.tenant_of_code.get(c) for c in unseen})
        elif kind == "error":
            worker.busy -= 1
            self.errors[result[2]] = result[3]
        else:
            self._fail(result)
        return self.rows

    def _codes_for(self, worker: _Worker) -> dict[str, uuid.UUID | None]:
        codes, worker.codes = worker.codes, {}
        return codes

    def _fail(self, result: tuple[Any, ...]) -> None:
        raise RuntimeError(f"a load worker failed: {result[-1]}")

    def _stop_workers(self) -> None:
        for worker in self.workers:
            worker.sends.put(None)
        for worker in self.workers:
            if worker.sender is not None:
                worker.sender.join(timeout=2)
            worker.inbox.close()
        for worker in self.workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.reader.join(timeout=2)
            worker.outbox.close()


def _read(
    worker: _Worker,
    number: int,
    results: asyncio.Queue[tuple[Any, ...]],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Hand everything the worker sends to the event loop; its end as a crash."""
    while True:
        try:
            message = worker.outbox.recv()
        except (EOFError, OSError):
            loop.call_soon_threadsafe(results.put_nowait, ("crash", number, "the worker exited"))
            return
        loop.call_soon_threadsafe(results.put_nowait, (message[0], number, *message[1:]))
        if message[0] in ("final", "crash"):
            return


def _write(worker: _Worker) -> None:
    while (message := worker.sends.get()) is not None:
        try:
            worker.inbox.send(message)
        except OSError:
            return  # the worker is gone; its reader reports it


def _record_boundary(buffer: bytearray) -> int | None:
    """The end of the last complete record in `buffer` (after a line break outside quotes)."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return None
    quotes = buffer.count(b'"', 0, end)
    for _ in range(256):
        if quotes % 2 == 0:
            return end + 1
        before = buffer.rfind(b"\n", 0, end)
        if before < 0:
            return None
        quotes -= buffer.count(b'"', before, end)
        end = before
    return None


def _first_record_boundary(buffer: bytearray) -> int | None:
    quotes = 0
    start = 0
    while True:
        end = buffer.find(b"\n", start)
        if end < 0:
            return None
        quotes += buffer.count(b'"', start, end)
        if quotes % 2 == 0:
            return end + 1
        start = end + 1


def work(inbox: Connection, outbox: Connection, setup: WorkerSetup) -> None:
    """A worker process: blocks in, COPY lines out, until "finish"."""
    try:
        _Mapper(setup, outbox).serve(inbox)
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception:
        outbox.send(("crash", traceback.format_exc(limit=5)))


class _Mapper:
    def __init__(self, setup: WorkerSetup, outbox: Connection) -> None:
        self.setup = setup
        self.outbox = outbox
        self.mapper = RowMapper(setup.source)
        self.stager = RowStager(
            account_id=setup.account_id, mapper=self.mapper, allowed=setup.allowed
        )
        self.stager.use_key(setup.key, setup.key_version)
        self.tenant_of_code: dict[str, uuid.UUID | None] = {}
        self.waiting: list[tuple[MappedRow, list[str]]] = []

    def serve(self, inbox: Connection) -> None:
        while True:
            message = inbox.recv()
            self.tenant_of_code.update(message[-1])
            ready = self._ready()
            if message[0] == "finish":
                ready += self.stager.lines(self.waiting, self.tenant_of_code)
                self.outbox.send(("final", ready))
                return
            _, index, line, block, _ = message
            self._block(index, line, block, ready)

    def _ready(self) -> bytes:
        if not self.waiting:
            return b""
        known = [(r, v) for r, v in self.waiting if r.tenant_code in self.tenant_of_code]
        self.waiting = [(r, v) for r, v in self.waiting if r.tenant_code not in self.tenant_of_code]
        return self.stager.lines(known, self.tenant_of_code)

    def _block(self, index: int, line: int, block: bytes, ready: bytes) -> None:
        setup = self.setup
        parser = RecordParser(
            encoding=setup.encoding, delimiter=setup.delimiter, quote='"', escape=""
        )
        shift = line - 1
        try:
            records = parser.feed(block) + parser.finish()
        except FileFormatError as error:
            message = _LINE.sub(lambda m: f"line {int(m.group(1)) + shift}", str(error), count=1)
            self.outbox.send(("error", index, message))
            return
        out: list[str] = []
        unseen: set[str] = set()
        codes = self.tenant_of_code
        stager = self.stager
        for record in records:
            row = self.mapper.map(record.line + shift, record.values)
            code = row.tenant_code
            if code and code not in codes:
                unseen.add(code)
                self.waiting.append((row, record.values))
            else:
                out.append(stager.line(row, record.values, codes.get(code)))
        self.outbox.send(
            ("done", index, len(records), ready + "".join(out).encode(), sorted(unseen))
        )
