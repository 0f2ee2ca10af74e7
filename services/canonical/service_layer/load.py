"""Loading one received file into canonical records, in bulk, in one transaction.

`Loader.load` runs inside the transaction of the file's load job (service_layer/jobs.py): it
streams the file from ingestion, maps and seals its rows, COPYs them into a staging table of
that transaction, and merges them into the records set-based (adapters/db/loading.py). Records,
rejects and the job's outcome commit together or not at all, so a crash anywhere rolls back
and the redelivered job loads the file cleanly; the merge is an upsert by dedupe key, so
loading the same rows again changes nothing.

Large files are mapped by worker processes (service_layer/parallel.py); small ones, and files
whose bytes cannot be cut into independent blocks, in this process, a batch at a time.

The header decides the source schema (domain/recognition.py): a file whose header is exactly
another source schema's columns is loaded with that one, whatever its route named; a header
that matches none of the account's source schemas ends the load as quarantined, with the
reason. A file that cannot be read (empty, its schema's header with another delimiter, broken
quoting) fails alone: what it wrote is rolled back to a savepoint and the load is recorded as
failed with a reason naming the line. Rows that cannot be mapped are rejected with every
reason; the rest load.
"""

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from services.canonical.adapters.db.loading import LoadStage
from services.canonical.adapters.db.repositories import RejectRepository, SourceSchemaRepository
from services.canonical.domain.errors import FileFormatError
from services.canonical.domain.files import FileRecord, RecordParser, header_problem
from services.canonical.domain.loads import LoadCounts, LoadOutcome
from services.canonical.domain.mapping import RowMapper
from services.canonical.domain.recognition import misdelimited, recognise, unrecognised_reason
from services.canonical.domain.source_schemas import SourceSchema, SourceSchemaDefinition
from services.canonical.service_layer.parallel import ParallelMapping, can_split, splittable_head
from services.canonical.service_layer.ports import (
    FileSource,
    FileUnavailable,
    KeyProvider,
    KeyUnavailable,
    TenantDirectory,
)
from services.canonical.service_layer.staging import RowStager
from services.runtime.db import Database
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000

Write = Callable[[bytes], Awaitable[None]]
# Called with the rows read so far; the job records it every so many rows.
Progress = Callable[[int], Awaitable[None]]


class LoadFailed(Exception):
    """The file as a whole cannot be loaded; the message is the reason people see."""


class _Quarantined(Exception):
    """The file's header matches no source schema of the account; the message says why."""


class _Rerouted(Exception):
    """The file's header is another source schema's: load it again with that one."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# Failures of the file itself: loading it again would fail the same way.
FILE_FAILURES = (LoadFailed, FileFormatError, FileUnavailable, KeyUnavailable)


@dataclass(frozen=True)
class LoadFile:
    """Load one received file of an account with one of its source schemas."""

    account_id: uuid.UUID
    file_id: uuid.UUID
    source_schema: str
    # The drop zone's scope: rows may only resolve to these tenants.
    tenant_ids: frozenset[uuid.UUID]
    correlation_id: str = ""
    size_bytes: int = 0


async def _no_progress(rows: int) -> None:
    return None


class Loader:
    def __init__(
        self,
        *,
        db: Database,
        outbox: Outbox,
        files: FileSource,
        tenants: TenantDirectory,
        keys: KeyProvider,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int = 2,
        parallel_min_bytes: int = 8 << 20,
        block_bytes: int = 1 << 20,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.files = files
        self.tenants = tenants
        self.keys = keys
        self.batch_size = batch_size
        self.workers = workers
        self.parallel_min_bytes = parallel_min_bytes
        self.block_bytes = block_bytes

    async def load(
        self, session: AsyncSession, command: LoadFile, progress: Progress | None = None
    ) -> LoadOutcome:
        """Load the file in `session`'s transaction; a file that cannot load is an outcome
        (failed, with the reason), anything else (a service away) raises for a retry."""
        # Rejects of an earlier load of this file go, even when this one fails as a whole.
        await RejectRepository(session).forget_file(command.file_id)
        schemas = await SourceSchemaRepository(session).current()
        name, recognised = command.source_schema, False
        while True:
            run = _FileLoad(
                self, session, command, progress or _no_progress, schemas, name, recognised
            )
            try:
                async with session.begin_nested():
                    return await run.run()
            except _Rerouted as rerouted:  # at most once: the recognised schema's header fits
                name, recognised = rerouted.name, True
            except _Quarantined as quarantined:
                return LoadOutcome.quarantined(str(quarantined))
            except FILE_FAILURES as failure:
                return LoadOutcome.failed(str(failure), rows_total=run.rows_total).used(
                    run.schema_name, run.schema_version
                )


class _FileLoad:
    """The state of one file's load: parser, mapper, tenant codes seen, counts."""

    def __init__(
        self,
        loader: Loader,
        session: AsyncSession,
        command: LoadFile,
        progress: Progress,
        schemas: list[SourceSchema],
        name: str,
        recognised: bool,
    ) -> None:
        self.loader = loader
        self.session = session
        self.command = command
        self.progress = progress
        self.schemas = schemas
        self.name = name
        # Loading with the schema its header was recognised as: no second reroute.
        self.recognised = recognised
        self.schema_name = ""
        self.schema_version = 0
        self.rows_total = 0
        self.tenant_of_code: dict[str, uuid.UUID | None] = {}
        self.batch: list[FileRecord] = []
        self.header_seen = False
        self.parallel = False

    async def run(self) -> LoadOutcome:
        command = self.command
        stored = next((s for s in self.schemas if s.definition.name == self.name), None)
        if stored is None:
            await self._recognise_unrouted()
        self.schema_name, self.schema_version = stored.definition.name, stored.version
        self.source: SourceSchemaDefinition = stored.definition
        self.mapper = RowMapper(self.source)
        self.stager = RowStager(
            account_id=command.account_id, mapper=self.mapper, allowed=command.tenant_ids
        )
        stage = LoadStage(self.session)
        await stage.create()
        started = time.monotonic()
        chunks = self.loader.files.read(account_id=command.account_id, file_id=command.file_id)
        async with stage.copy() as write, aclosing(chunks):
            if self._parallel():
                head, stream = await _peek(chunks)
                self.parallel = splittable_head(head)
                if self.parallel:
                    await self._map_in_workers(stream, write)
                else:
                    await self._map_here(stream, write)
            else:
                await self._map_here(chunks, write)
        if not self.header_seen:
            raise LoadFailed("the file is empty (no header line)")
        staged = time.monotonic()
        merged = await stage.merge(
            account_id=command.account_id,
            schema=self.mapper.canonical.name,
            source=self.source.tenant_code_source,
            source_id_column=self.source.source_id_column,
            file_id=command.file_id,
            key_version=self.stager.cipher.version if self.stager.cipher else 0,
            index_key_version=self.stager.index_key.version if self.stager.index_key else 0,
        )
        log.info(
            "file staged and merged",
            extra={
                "fields": {
                    "file_id": str(command.file_id),
                    "rows": self.rows_total,
                    "workers": self.loader.workers if self.parallel else 0,
                    "stage_seconds": round(staged - started, 3),
                    "merge_seconds": round(time.monotonic() - staged, 3),
                    "merge_steps": merged.steps,
                }
            },
        )
        return LoadOutcome.of(
            LoadCounts(
                rows_total=self.rows_total,
                created=merged.created,
                updated=merged.updated,
                unchanged=merged.unchanged,
                rejected=merged.rejected,
            )
        ).used(self.schema_name, self.schema_version)

    async def _recognise_unrouted(self) -> NoReturn:
        """The route named no source schema of the account (none, or one deleted since):
        the header alone decides. Read as plain comma-separated UTF-8 (a schema with another
        delimiter splits it again); raises _Rerouted, _Quarantined or LoadFailed."""
        command = self.command
        parser = RecordParser(encoding="utf-8", delimiter=",")
        header: FileRecord | None = None
        chunks = self.loader.files.read(account_id=command.account_id, file_id=command.file_id)
        async with aclosing(chunks):
            async for chunk in chunks:
                records = parser.feed(chunk)
                if records:
                    header = records[0]
                    break
            else:
                records = parser.finish()
                header = records[0] if records else None
        if header is None:
            raise LoadFailed("the file is empty (no header line)")
        found = recognise(header.values, self.schemas)
        if found is not None and not self.recognised:
            raise _Rerouted(found.definition.name)
        named = (
            f"source schema '{self.name}' does not exist"
            if self.name
            else "the file matched no route of its drop zone"
        )
        raise _Quarantined(f"{named}; {unrecognised_reason(header.values)}")

    def _parallel(self) -> bool:
        loader = self.loader
        return (
            loader.workers > 1
            and self.command.size_bytes >= loader.parallel_min_bytes
            and can_split(self.source)
        )

    async def _map_in_workers(self, chunks: AsyncIterator[bytes], write: Write) -> None:
        command = self.command
        key = await self.loader.keys.current(account_id=command.account_id)
        self.stager.use_key(key.key, key.version)
        mapping = ParallelMapping(
            account_id=command.account_id,
            source=self.source,
            allowed=command.tenant_ids,
            key=key,
            workers=self.loader.workers,
            block_bytes=self.loader.block_bytes,
            resolve=self._resolve,
            tenant_of_code=self.tenant_of_code,
            check_header=self._check_header,
        )
        async for rows in mapping.run(chunks, write):
            self.rows_total = rows
            await self.progress(rows)
        self.rows_total = mapping.rows
        self.header_seen = mapping.header_seen

    async def _map_here(self, chunks: AsyncIterator[bytes], write: Write) -> None:
        source = self.source
        parser = RecordParser.for_dialect(
            encoding=source.encoding, dialect=source.dialect, columns=source.columns
        )
        self.parser = parser
        async for chunk in chunks:
            for record in parser.feed(chunk):
                await self._take(record, write)
        for record in parser.finish():
            await self._take(record, write)
        await self._flush(write)

    def _check_header(self, record: FileRecord, delimiter: str) -> None:
        problem = header_problem(
            line=record.line, expected=self.source.columns, found=record.values, delimiter=delimiter
        )
        if not problem:
            return
        found = recognise(record.values, self.schemas, preferred=self.source.name)
        if found is not None and found.definition.name != self.source.name and not self.recognised:
            raise _Rerouted(found.definition.name)
        if misdelimited(record.values, self.source):
            raise LoadFailed(problem)
        raise _Quarantined(f"{unrecognised_reason(record.values)}; {problem}")

    async def _take(self, record: FileRecord, write: Write) -> None:
        if not self.header_seen:
            self._check_header(record, self.parser.delimiter)
            self.header_seen = True
            return
        self.rows_total += 1
        self.batch.append(record)
        if len(self.batch) >= self.loader.batch_size:
            await self._flush(write)

    async def _flush(self, write: Write) -> None:
        if not self.batch:
            return
        rows = [(self.mapper.map(r.line, r.values), r.values) for r in self.batch]
        self.batch = []
        await self._resolve({row.tenant_code for row, _ in rows if row.tenant_code})
        stager = self.stager
        if stager.cipher is None and any(
            stager.needs_key(row, self.tenant_of_code.get(row.tenant_code)) for row, _ in rows
        ):
            key = await self.loader.keys.current(account_id=self.command.account_id)
            stager.use_key(key.key, key.version)
        await write(stager.lines(rows, self.tenant_of_code))
        await self.progress(self.rows_total)

    async def _resolve(self, codes: set[str]) -> None:
        """Tenants of codes not seen before in this file: at most one call per batch, and in
        practice one per file, since a file's few tenant codes show up in its first rows."""
        unseen = sorted(codes - self.tenant_of_code.keys())
        if not unseen:
            return
        resolved = await self.loader.tenants.resolve(
            account_id=self.command.account_id,
            source=self.source.tenant_code_source,
            codes=unseen,
        )
        for code in unseen:
            self.tenant_of_code[code] = resolved.get(code)


async def _peek(chunks: AsyncIterator[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first bytes of a stream, and the whole stream again."""
    head = b""
    async for chunk in chunks:
        head = chunk
        if chunk:
            break

    async def again() -> AsyncIterator[bytes]:
        if head:
            yield head
        async for chunk in chunks:
            yield chunk

    return head, again()
