"""Use cases that read what loads left: canonical records (decrypted) and rejects."""

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from services.canonical.adapters.db.jobs import JobRepository
from services.canonical.adapters.db.repositories import (
    LoadRepository,
    RecordIndexRepository,
    RecordRepository,
    RecordSearchRepository,
    RejectRowRepository,
)
from services.canonical.domain.encryption import BlindIndexKey, Keyring, key_version_of
from services.canonical.domain.jobs import may_see_rejects
from services.canonical.domain.loads import Reject, rejects_csv_lines
from services.canonical.domain.mapping import TRUE_WORDS
from services.canonical.domain.records import CanonicalRecord, open_record_data
from services.canonical.domain.schemas import CanonicalField, CanonicalSchema, canonical_schema
from services.canonical.service_layer.ports import KeyProvider
from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.errors import InvalidInput, NotFound
from services.runtime.ids import parse_id
from services.runtime.pages import decode_token, next_token, page_size


async def list_records(
    *,
    db: Database,
    keys: KeyProvider,
    ctx: CallContext,
    schema: str,
    size: int,
    token: str,
    tenant_id: str = "",
    field: str = "",
    equals: str = "",
) -> tuple[list[CanonicalRecord], str]:
    """A page of one schema's records in the caller's tenants, sensitive fields decrypted;
    with `field` and `equals`, only the records whose field has exactly that value (a
    sensitive field is found through its blind index, never by its plaintext)."""
    account_id = ctx.require_account()
    canonical = canonical_schema(schema)
    limit, after = page_size(size), decode_token(token)
    tenant = parse_id(tenant_id, field="tenant_id") if tenant_id else None
    searched = _searched_field(canonical, field, equals)
    async with db.transaction(Scope.of(ctx)) as session:
        if searched is None:
            items = await RecordRepository(session).page(
                schema=canonical.name,
                after=after,
                limit=limit,
                tenant_id=tenant,
                tenant_ids=ctx.tenant_ids,
            )
        elif not searched.sensitive:
            items = await RecordSearchRepository(session).page(
                schema=canonical.name,
                field=searched.name,
                equals=_stored_text(searched, equals),
                after=after,
                limit=limit,
                tenant_id=tenant,
                tenant_ids=ctx.tenant_ids,
            )
        else:
            versions = await RecordIndexRepository(session).key_versions(
                schema=canonical.name, field=searched.name
            )
            digests = []
            for version in versions:
                data_key = await keys.version(account_id=account_id, version=version)
                index_key = BlindIndexKey.derive(data_key.key, data_key.version)
                digests.append(index_key.digest(searched.name, equals))
            items = (
                await RecordSearchRepository(session).page(
                    schema=canonical.name,
                    field=searched.name,
                    digests=digests,
                    after=after,
                    limit=limit,
                    tenant_id=tenant,
                    tenant_ids=ctx.tenant_ids,
                )
                if digests
                else []
            )
    keyring = await _keyring(keys, account_id, items, [f.name for f in canonical.sensitive_fields])
    opened = [
        dataclasses.replace(
            item,
            data=open_record_data(
                item.data,
                account_id=account_id,
                schema=canonical,
                dedupe_key=item.dedupe_key,
                keyring=keyring,
            ),
        )
        for item in items
    ]
    return opened, next_token(items, limit)


def _searched_field(canonical: CanonicalSchema, field: str, equals: str) -> CanonicalField | None:
    if not field and not equals:
        return None
    if not field or not equals:
        raise InvalidInput("search needs both field and equals")
    found = canonical.field_named(field)
    if found is None:
        raise InvalidInput(f"'{canonical.name}' has no field '{field}'")
    if found.sensitive and not found.searchable:
        searchable = ", ".join(f.name for f in canonical.blind_indexed_fields) or "none"
        raise InvalidInput(
            f"'{field}' is sensitive and not searchable (sensitive fields to search by:"
            f" {searchable})"
        )
    return found


def _stored_text(field: CanonicalField, equals: str) -> str:
    """The text of `equals` as the field stores it (JSON text of its typed value)."""
    if field.type == "boolean":
        return "true" if equals.strip().lower() in TRUE_WORDS else "false"
    return equals.strip()


async def _keyring(
    keys: KeyProvider, account_id: uuid.UUID, items: list[CanonicalRecord], sensitive: list[str]
) -> Keyring:
    """The key versions the page's sensitive values need, one call per version."""
    versions = {
        key_version_of(value)
        for item in items
        for name in sensitive
        if isinstance(value := item.data.get(name), str)
    }
    keyring = Keyring()
    for version in sorted(versions):
        key = await keys.version(account_id=account_id, version=version)
        keyring.add(key.version, key.key)
    return keyring


async def list_rejects(
    *, db: Database, ctx: CallContext, file_id: str, size: int, token: str
) -> tuple[list[Reject], str]:
    """A page of the rows of one loaded file of the caller's account that did not load."""
    ctx.require_account()
    file = parse_id(file_id, field="file_id")
    limit, after = page_size(size), decode_token(token)
    async with db.transaction(Scope.of(ctx)) as session:
        await _require_visible_load(session, ctx, file, file_id)
        items = await RejectRowRepository(session).page(file_id=file, after=after, limit=limit)
    return items, next_token(items, limit)


async def _require_visible_load(
    session: AsyncSession, ctx: CallContext, file: uuid.UUID, file_id: str
) -> None:
    """The file was loaded and the caller may see its rejects (domain/jobs.may_see_rejects);
    a file the caller may not see answers like one never loaded."""
    if not await LoadRepository(session).exists(file):
        raise NotFound(f"file {file_id} has not been loaded")
    if ctx.tenant_ids is not None:
        tenants = await JobRepository(session).tenants_of_file(file)
        if tenants is None or not may_see_rejects(ctx.tenant_ids, tenants):
            raise NotFound(f"file {file_id} has not been loaded")


EXPORT_PAGE = 1000
EXPORT_CHUNK_BYTES = 64 * 1024


async def export_rejects(*, db: Database, ctx: CallContext, file_id: str) -> AsyncIterator[bytes]:
    """A file's rejects as CSV bytes in chunks: "row_number,column,reason" and the kept
    (non-sensitive) original values, one line per reason; a page of rejects per query."""
    ctx.require_account()
    file = parse_id(file_id, field="file_id")
    async with db.transaction(Scope.of(ctx)) as session:
        await _require_visible_load(session, ctx, file, file_id)

    async def pages() -> AsyncIterator[list[Reject]]:
        after = None
        while True:
            async with db.transaction(Scope.of(ctx)) as session:
                page = await RejectRowRepository(session).page(
                    file_id=file, after=after, limit=EXPORT_PAGE
                )
            if not page:
                return
            yield page
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].id

    buffer: list[str] = []
    size = 0
    header_done = False
    async for page in pages():
        lines = rejects_csv_lines(page)
        if header_done:
            lines = _skip_header(lines)
        header_done = True
        for text in lines:
            buffer.append(text)
            size += len(text)
            if size >= EXPORT_CHUNK_BYTES:
                yield "".join(buffer).encode("utf-8")
                buffer, size = [], 0
    if not header_done:
        buffer.append(next(rejects_csv_lines([])))
    if buffer:
        yield "".join(buffer).encode("utf-8")


def _skip_header(lines: Iterator[str]) -> Iterator[str]:
    first = next(lines, "")
    yield first.split("\n", 1)[1] if "\n" in first else ""
    yield from lines
