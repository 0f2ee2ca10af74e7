"""Loading one received file into canonical records, in bulk, exactly once.

The consumer hands `Loader.load` the session of its transaction (which also marks the event
processed): every record, reject and the final status commit together or not at all, so a
crash mid-file rolls back and the redelivery loads cleanly. Only the "processing" mark and
its event go first, in their own short transaction, so people see the file being worked on.

A file that cannot be read (unknown source schema, bad header, bytes not in the encoding,
broken quoting) fails alone: what it wrote is rolled back to a savepoint and the load is
recorded as failed with a reason naming the line. Rows that cannot be mapped are rejected
with every reason; the rest load.
"""

import logging
import uuid
from contextlib import aclosing
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.canonical.v1 import canonical_pb2
from services.canonical.adapters.db.repositories import (
    LoadRepository,
    RecordRepository,
    RejectRepository,
    SourceSchemaRepository,
)
from services.canonical.domain.encryption import FieldCipher
from services.canonical.domain.errors import FileFormatError
from services.canonical.domain.files import FileRecord, RecordParser, header_problem
from services.canonical.domain.loads import LoadCounts, LoadOutcome, tenant_reasons
from services.canonical.domain.mapping import RowMapper
from services.canonical.domain.records import SealedRecord, seal_record
from services.canonical.domain.source_schemas import SourceSchemaDefinition
from services.canonical.service_layer.ports import (
    FileSource,
    FileUnavailable,
    KeyProvider,
    KeyUnavailable,
    TenantDirectory,
)
from services.runtime.context import CallContext, service_context
from services.runtime.db import Database, Scope
from services.runtime.events import new_event
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)

LOAD_STARTED = "canopy.canonical.load.started"
LOAD_COMPLETED = "canopy.canonical.load.completed"
DEFAULT_BATCH_SIZE = 1000


class LoadFailed(Exception):
    """The file as a whole cannot be loaded; the message is the reason people see."""


@dataclass(frozen=True)
class LoadFile:
    """Load one received file of an account with one of its source schemas."""

    account_id: uuid.UUID
    file_id: uuid.UUID
    source_schema: str
    # The drop zone's scope: rows may only resolve to these tenants.
    tenant_ids: frozenset[uuid.UUID]
    correlation_id: str = ""


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
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.files = files
        self.tenants = tenants
        self.keys = keys
        self.batch_size = batch_size

    async def load(self, session: AsyncSession, command: LoadFile) -> LoadOutcome:
        ctx = service_context(
            "canonical",
            account_id=command.account_id,
            permissions=(),
            correlation_id=command.correlation_id or None,
        )
        await self._record_started(command, ctx)
        # Rejects of an earlier load of this file go, even when this one fails as a whole.
        await RejectRepository(session).forget_file(command.file_id)
        progress = _FileLoad(self, session, command)
        try:
            async with session.begin_nested():
                outcome = await progress.run()
        except (LoadFailed, FileFormatError, FileUnavailable, KeyUnavailable) as failure:
            outcome = LoadOutcome.failed(str(failure), rows_total=progress.counts.rows_total)
        await LoadRepository(session).finish(file_id=command.file_id, outcome=outcome)
        counts = outcome.counts
        payload = canonical_pb2.LoadCompleted(
            file_id=str(command.file_id),
            status=outcome.status,
            reason=outcome.reason,
            rows_total=counts.rows_total,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=counts.rejected,
        )
        await self.outbox.add(
            session,
            new_event(LOAD_COMPLETED, payload, account_id=command.account_id, ctx=ctx),
        )
        log.info(
            "file load finished",
            extra={
                "fields": {
                    "file_id": str(command.file_id),
                    "status": outcome.status,
                    "rows_total": counts.rows_total,
                    "created": counts.created,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "rejected": counts.rejected,
                }
            },
        )
        return outcome

    async def _record_started(self, command: LoadFile, ctx: CallContext) -> None:
        async with self.db.transaction(Scope.account(command.account_id)) as session:
            await LoadRepository(session).start(
                account_id=command.account_id,
                file_id=command.file_id,
                source_schema=command.source_schema,
            )
            payload = canonical_pb2.LoadStarted(
                file_id=str(command.file_id), source_schema=command.source_schema
            )
            await self.outbox.add(
                session,
                new_event(LOAD_STARTED, payload, account_id=command.account_id, ctx=ctx),
            )


class _FileLoad:
    """The state of one file's load: parser, mapper, tenant codes seen, keys seen, counts."""

    def __init__(self, loader: Loader, session: AsyncSession, command: LoadFile) -> None:
        self.loader = loader
        self.session = session
        self.command = command
        self.counts = LoadCounts()
        self.tenant_of_code: dict[str, uuid.UUID | None] = {}
        self.first_row_of_key: dict[str, int] = {}
        self.batch: list[FileRecord] = []
        self.header_seen = False
        self.cipher: FieldCipher | None = None

    async def run(self) -> LoadOutcome:
        command = self.command
        if not command.source_schema:
            raise LoadFailed(
                "the file matched no route of its drop zone, so it has no source schema"
            )
        stored = await SourceSchemaRepository(self.session).named(command.source_schema)
        if stored is None:
            raise LoadFailed(f"source schema '{command.source_schema}' does not exist")
        self.source = stored.definition
        self.mapper = RowMapper(self.source)
        self.records = RecordRepository(self.session)
        self.rejects = RejectRepository(self.session)

        parser = RecordParser(encoding=self.source.encoding, delimiter=self.source.delimiter)
        chunks = self.loader.files.read(account_id=command.account_id, file_id=command.file_id)
        async with aclosing(chunks):
            async for chunk in chunks:
                for record in parser.feed(chunk):
                    await self._take(record)
        for record in parser.finish():
            await self._take(record)
        await self._flush()
        if not self.header_seen:
            raise LoadFailed("the file is empty (no header line)")
        return LoadOutcome.of(self.counts)

    async def _take(self, record: FileRecord) -> None:
        if not self.header_seen:
            problem = header_problem(
                line=record.line,
                expected=self.source.columns,
                found=record.values,
                delimiter=self.source.delimiter,
            )
            if problem:
                raise LoadFailed(problem)
            self.header_seen = True
            return
        self.counts.rows_total += 1
        self.batch.append(record)
        if len(self.batch) >= self.loader.batch_size:
            await self._flush()

    async def _flush(self) -> None:
        if not self.batch:
            return
        source: SourceSchemaDefinition = self.source
        rows = [self.mapper.map(record.line, record.values) for record in self.batch]
        self.batch = []
        await self._resolve({row.tenant_code for row in rows if row.tenant_code})

        sealed: list[SealedRecord] = []
        rejected: list[tuple[int, list[str]]] = []
        for row in rows:
            tenant_id = self.tenant_of_code.get(row.tenant_code)
            reasons = list(row.reasons)
            reasons += tenant_reasons(
                row,
                tenant_id=tenant_id,
                allowed=self.command.tenant_ids,
                source=source.tenant_code_source,
            )
            if not reasons and tenant_id is not None:
                record = seal_record(
                    row,
                    account_id=self.command.account_id,
                    tenant_id=tenant_id,
                    source=source.tenant_code_source,
                    schema=self.mapper.canonical,
                    cipher=await self._cipher(),
                )
                first = self.first_row_of_key.setdefault(record.dedupe_key, row.row_number)
                if first == row.row_number:
                    sealed.append(record)
                else:
                    reasons.append(
                        f"row {row.row_number}: source id '{row.source_id}' of the same tenant"
                        f" is already on row {first}"
                    )
            if reasons:
                rejected.append((row.row_number, reasons))

        created, updated = await self.records.upsert(
            account_id=self.command.account_id,
            schema=self.mapper.canonical.name,
            file_id=self.command.file_id,
            sealed=sealed,
        )
        await self.rejects.add_many(
            account_id=self.command.account_id, file_id=self.command.file_id, rows=rejected
        )
        self.counts.created += created
        self.counts.updated += updated
        self.counts.unchanged += len(sealed) - created - updated
        self.counts.rejected += len(rejected)

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

    async def _cipher(self) -> FieldCipher:
        if self.cipher is None:
            key = await self.loader.keys.current(account_id=self.command.account_id)
            self.cipher = FieldCipher(key.key, key.version)
        return self.cipher
