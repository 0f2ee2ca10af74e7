"""Use cases on schemas: the canonical schemas shipped, and an account's source schemas."""

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.canonical.v1 import canonical_pb2
from services.canonical.adapters.db.repositories import (
    RecordSearchRepository,
    ReferenceRepository,
    SourceSchemaRepository,
    SourceSchemaVersionRepository,
)
from services.canonical.domain.errors import FileFormatError
from services.canonical.domain.files import FileRecord, RecordParser, header_problem
from services.canonical.domain.mapping import MappedRow, RejectRow, RowMapper
from services.canonical.domain.recognition import CodeCoverage, Coverage, DiffCounts
from services.canonical.domain.records import content_hash, dedupe_key
from services.canonical.domain.reference import ReferenceItem, check_items, check_kind
from services.canonical.domain.schemas import CANONICAL_SCHEMAS, CanonicalSchema
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchema,
    SourceSchemaDefinition,
    ValueMap,
    define_source_schema,
    redefine,
    with_missing_fields,
)
from services.canonical.service_layer.ports import FileSource, TenantDirectory
from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.errors import InvalidInput, NotFound, PreconditionFailed
from services.runtime.events import new_event
from services.runtime.ids import parse_id
from services.runtime.outbox import Outbox
from services.runtime.pages import decode_token, next_token, page_size

P = TypeVar("P")

SOURCE_SCHEMA_CREATED = "canopy.canonical.source_schema.created"


def list_canonical_schemas() -> list[CanonicalSchema]:
    return sorted(CANONICAL_SCHEMAS.values(), key=lambda s: s.name)


async def create_source_schema(
    *,
    db: Database,
    outbox: Outbox,
    ctx: CallContext,
    name: str,
    canonical_schema: str,
    columns: Iterable[str],
    source_id_column: str,
    tenant_code_column: str,
    field_mappings: Iterable[FieldMapping],
    value_maps: Iterable[ValueMap] = (),
    delimiter: str = "",
    encoding: str = "",
    tenant_code_source: str = "",
    quote: str = '"',
    escape: str = "",
    header: bool = True,
) -> SourceSchema:
    account_id = ctx.require_account()
    definition = define_source_schema(
        quote=quote,
        escape=escape,
        header=header,
        name=name,
        canonical_schema=canonical_schema,
        columns=columns,
        source_id_column=source_id_column,
        tenant_code_column=tenant_code_column,
        field_mappings=field_mappings,
        value_maps=value_maps,
        delimiter=delimiter,
        encoding=encoding,
        tenant_code_source=tenant_code_source,
    )
    async with db.transaction(Scope.of(ctx)) as session:
        created = await SourceSchemaRepository(session).add(account_id, definition)
        await SourceSchemaVersionRepository(session).record(
            account_id=account_id, schema_id=created.id, version=1, definition=definition
        )
        payload = canonical_pb2.SourceSchemaCreated(
            source_schema_id=str(created.id),
            name=definition.name,
            canonical_schema=definition.canonical_schema,
        )
        await outbox.add(
            session, new_event(SOURCE_SCHEMA_CREATED, payload, account_id=account_id, ctx=ctx)
        )
    return created


async def list_source_schemas(
    *, db: Database, ctx: CallContext, size: int, token: str
) -> tuple[list[SourceSchema], str]:
    ctx.require_account()
    limit, after = page_size(size), decode_token(token)
    async with db.transaction(Scope.of(ctx)) as session:
        items = await SourceSchemaRepository(session).page(after=after, limit=limit)
    return items, next_token(items, limit)


SOURCE_SCHEMA_CHANGED = "canopy.canonical.source_schema.changed"
PREVIEW_DEFAULT_ROWS = 100
PREVIEW_MAX_ROWS = 1000
DIFF_BATCH_ROWS = 1000
SENSITIVE_SHOWN = "***"


async def _stored(
    session: AsyncSession, schema_id: str
) -> tuple[SourceSchemaVersionRepository, SourceSchema]:
    versions = SourceSchemaVersionRepository(session)
    found = await versions.by_id(parse_id(schema_id, field="id"))
    if found is None:
        raise NotFound(f"source schema {schema_id} does not exist")
    return versions, found


async def _version(
    versions: SourceSchemaVersionRepository, schema: SourceSchema, version: int
) -> tuple[int, SourceSchemaDefinition]:
    """The definition of `version` (0: the newest) of a stored source schema."""
    number = version or schema.latest_version
    if number == schema.version:
        return number, schema.definition
    definition = await versions.definition(schema, number)
    if definition is None:
        raise NotFound(f"source schema {schema.id} has no version {number}")
    return number, definition


async def get_source_schema(
    *, db: Database, ctx: CallContext, schema_id: str, version: int = 0
) -> tuple[SourceSchema, int]:
    """The source schema with the definition of `version` (0: the current one), and which."""
    ctx.require_account()
    async with db.transaction(Scope.of(ctx)) as session:
        versions, schema = await _stored(session, schema_id)
        if not version or version == schema.version:
            return schema, schema.version
        number, definition = await _version(versions, schema, version)
    return dataclasses.replace(schema, definition=definition), number


async def _new_version(
    *,
    db: Database,
    outbox: Outbox,
    ctx: CallContext,
    schema_id: str,
    change: Callable[[SourceSchemaDefinition], SourceSchemaDefinition],
) -> tuple[SourceSchema, int]:
    account_id = ctx.require_account()
    async with db.transaction(Scope.of(ctx)) as session:
        versions, schema = await _stored(session, schema_id)
        _, newest = await _version(versions, schema, 0)
        definition = change(newest)
        if definition == newest:
            return schema, schema.latest_version
        updated = await versions.add_version(
            account_id=account_id, schema_id=schema.id, definition=definition
        )
        await _announce(outbox, session, ctx, updated, "version_added")
    return dataclasses.replace(updated, definition=definition), updated.latest_version


async def update_source_schema(
    *, db: Database, outbox: Outbox, ctx: CallContext, schema_id: str, **changes: Any
) -> tuple[SourceSchema, int]:
    """A new (not yet current) version with `changes` over the newest version; a change
    that changes nothing makes no version. Returns the schema showing the new version."""
    return await _new_version(
        db=db,
        outbox=outbox,
        ctx=ctx,
        schema_id=schema_id,
        change=lambda newest: redefine(newest, **changes),
    )


async def add_missing_fields(
    *, db: Database, outbox: Outbox, ctx: CallContext, schema_id: str
) -> tuple[SourceSchema, int]:
    """A new version with an unmapped placeholder for each canonical field not mapped yet."""
    return await _new_version(
        db=db,
        outbox=outbox,
        ctx=ctx,
        schema_id=schema_id,
        change=lambda newest: with_missing_fields(newest)[0],
    )


async def promote_source_schema(
    *, db: Database, outbox: Outbox, ctx: CallContext, schema_id: str, version: int
) -> SourceSchema:
    """Make `version` the current one: loads started from now on use it."""
    ctx.require_account()
    if version < 1:
        raise InvalidInput("version must be 1 or more")
    async with db.transaction(Scope.of(ctx)) as session:
        versions, schema = await _stored(session, schema_id)
        if version == schema.version:
            return schema
        promoted = await versions.promote(schema, version)
        await _announce(outbox, session, ctx, promoted, "promoted")
    return promoted


async def _announce(
    outbox: Outbox, session: AsyncSession, ctx: CallContext, schema: SourceSchema, what: str
) -> None:
    payload = canonical_pb2.SourceSchemaChanged(
        source_schema_id=str(schema.id),
        name=schema.definition.name,
        version=schema.version,
        latest_version=schema.latest_version,
        change=what,
    )
    await outbox.add(
        session,
        new_event(SOURCE_SCHEMA_CHANGED, payload, account_id=ctx.require_account(), ctx=ctx),
    )


@dataclass(frozen=True)
class Preview:
    version: int
    rows_read: int
    rows: list[MappedRow]
    coverage: list[CodeCoverage]
    rejects: list[RejectRow]
    sensitive: frozenset[str]
    mappings: tuple[FieldMapping, ...] = ()


async def _file_rows(
    files: FileSource,
    *,
    account_id: uuid.UUID,
    file_id: uuid.UUID,
    definition: SourceSchemaDefinition,
) -> AsyncIterator[FileRecord]:
    """The data records of a file read with `definition`, after checking its header."""
    parser = RecordParser.for_dialect(
        encoding=definition.encoding, dialect=definition.dialect, columns=definition.columns
    )
    header_seen = False
    chunks = files.read(account_id=account_id, file_id=file_id)
    async with aclosing(chunks):
        async for chunk in chunks:
            for record in parser.feed(chunk):
                if header_seen:
                    yield record
                else:
                    _check_header(record, parser.delimiter, definition)
                    header_seen = True
        for record in parser.finish():
            if header_seen:
                yield record
            else:
                _check_header(record, parser.delimiter, definition)
                header_seen = True
    if not header_seen:
        raise FileFormatError("the file is empty (no header line)")


def _check_header(record: FileRecord, delimiter: str, definition: SourceSchemaDefinition) -> None:
    problem = header_problem(
        line=record.line, expected=definition.columns, found=record.values, delimiter=delimiter
    )
    if problem:
        raise FileFormatError(problem)


def _needed(port: P | None, what: str) -> P:
    """A port this use case needs; checked after the schema was found, so another account's
    schema id answers NOT_FOUND like any unknown one."""
    if port is None:
        raise PreconditionFailed(f"this canonical service cannot {what}")
    return port


async def preview_source_schema(
    *,
    db: Database,
    files: FileSource | None,
    ctx: CallContext,
    schema_id: str,
    file_id: str,
    version: int = 0,
    rows: int = 0,
) -> Preview:
    """Map the first rows of an uploaded file with a version; write nothing."""
    account_id = ctx.require_account()
    file = parse_id(file_id, field="file_id")
    limit = min(rows or PREVIEW_DEFAULT_ROWS, PREVIEW_MAX_ROWS)
    if limit < 1:
        raise InvalidInput(f"rows must be 1 to {PREVIEW_MAX_ROWS}")
    async with db.transaction(Scope.of(ctx)) as session:
        versions, schema = await _stored(session, schema_id)
        number, definition = await _version(versions, schema, version)
    files = _needed(files, "read files (no file source)")
    mapper = RowMapper(definition)
    coverage = Coverage()
    mapped: list[MappedRow] = []
    rejects: list[RejectRow] = []
    read = 0
    records = _file_rows(files, account_id=account_id, file_id=file, definition=definition)
    async with aclosing(records):
        async for record in records:
            row = mapper.map(record.line, record.values)
            coverage.add(row)
            read += 1
            if row.reasons:
                rejects.append(mapper.reject(row, record.values))
            else:
                mapped.append(row)
            if read >= limit:
                break
    return Preview(
        version=number,
        rows_read=read,
        rows=mapped,
        coverage=coverage.report(),
        rejects=rejects,
        sensitive=frozenset(f.name for f in definition.canonical.sensitive_fields),
        mappings=definition.field_mappings,
    )


@dataclass(frozen=True)
class Diff:
    version: int
    current_version: int
    counts: DiffCounts


async def diff_source_schema(
    *,
    db: Database,
    files: FileSource | None,
    tenants: TenantDirectory | None,
    ctx: CallContext,
    schema_id: str,
    file_id: str,
    version: int = 0,
) -> Diff:
    """What loading the file with a version would do to the records stored now, by dedupe
    key and content hash; write nothing. Rows the version rejects (or whose tenant code is
    unknown) count as rejected."""
    account_id = ctx.require_account()
    file = parse_id(file_id, field="file_id")
    async with db.transaction(Scope.of(ctx)) as session:
        versions, schema = await _stored(session, schema_id)
        number, definition = await _version(versions, schema, version)
    files = _needed(files, "read files (no file source)")
    tenants = _needed(tenants, "resolve tenant codes (no tenant directory)")
    mapper = RowMapper(definition)
    counts = DiffCounts()
    tenant_of_code: dict[str, uuid.UUID | None] = {}
    seen: set[str] = set()
    batch: list[MappedRow] = []

    async def flush() -> None:
        codes = sorted({r.tenant_code for r in batch if r.tenant_code} - tenant_of_code.keys())
        if codes:
            found = await tenants.resolve(
                account_id=account_id, source=definition.tenant_code_source, codes=codes
            )
            tenant_of_code.update({code: found.get(code) for code in codes})
        keyed: dict[str, str] = {}
        for row in batch:
            tenant_id = tenant_of_code.get(row.tenant_code)
            if row.reasons or tenant_id is None:
                counts.rejected += 1
                continue
            key = dedupe_key(
                tenant_id=tenant_id,
                source=definition.tenant_code_source,
                object_type=definition.canonical_schema,
                source_id=row.source_id,
            )
            if key in seen:
                counts.rejected += 1
                continue
            seen.add(key)
            keyed[key] = content_hash(row.fields)
        async with db.transaction(Scope.of(ctx)) as session:
            stored = await RecordSearchRepository(session).content_hashes(list(keyed))
        for key, hashed in keyed.items():
            if key not in stored:
                counts.created += 1
            elif stored[key] == hashed:
                counts.unchanged += 1
            else:
                counts.changed += 1
        batch.clear()

    records = _file_rows(files, account_id=account_id, file_id=file, definition=definition)
    async with aclosing(records):
        async for record in records:
            counts.rows_total += 1
            batch.append(mapper.map(record.line, record.values))
            if len(batch) >= DIFF_BATCH_ROWS:
                await flush()
    await flush()
    return Diff(version=number, current_version=schema.version, counts=counts)


async def list_reference_data(*, db: Database, ctx: CallContext, kind: str) -> list[ReferenceItem]:
    check_kind(kind)
    async with db.transaction(Scope.nothing()) as session:
        return await ReferenceRepository(session).of_kind(kind)


async def dump_fixtures(*, db: Database, ctx: CallContext, kind: str = "") -> list[ReferenceItem]:
    if kind:
        check_kind(kind)
    async with db.transaction(Scope.nothing()) as session:
        return await ReferenceRepository(session).of_kind(kind or None)


async def load_fixtures(
    *, db: Database, ctx: CallContext, items: Iterable[ReferenceItem]
) -> tuple[int, int, int]:
    """(created, updated, unchanged): upserted by natural key, so loading twice changes
    nothing and a new natural key is a new row."""
    checked = check_items(items)
    if not checked:
        return 0, 0, 0
    async with db.transaction(Scope.nothing()) as session:
        return await ReferenceRepository(session).load(checked)
