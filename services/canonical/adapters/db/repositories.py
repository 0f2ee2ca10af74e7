"""Repositories of the canonical schema; each works inside the caller's RLS-scoped session."""

import dataclasses
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import orjson
from sqlalchemy import Row, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.canonical.adapters.db.tables import (
    loads,
    record_index,
    records,
    reference_data,
    rejects,
    source_schema_versions,
    source_schemas,
)
from services.canonical.domain.loads import PROCESSING, LoadOutcome, Reject
from services.canonical.domain.mapping import RejectRow
from services.canonical.domain.records import CanonicalRecord, SealedRecord
from services.canonical.domain.reference import ReferenceItem
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchema,
    SourceSchemaDefinition,
    Transform,
    ValueMap,
)
from services.runtime.errors import AlreadyExists, NotFound
from services.runtime.ids import new_id


def definition_to_json(definition: SourceSchemaDefinition) -> dict[str, Any]:
    return {
        "columns": list(definition.columns),
        "delimiter": definition.delimiter,
        "encoding": definition.encoding,
        "quote": definition.quote,
        "escape": definition.escape,
        "header": definition.header,
        "source_id_column": definition.source_id_column,
        "tenant_code_column": definition.tenant_code_column,
        "tenant_code_source": definition.tenant_code_source,
        "field_mappings": [_mapping_to_json(m) for m in definition.field_mappings],
        "value_maps": [
            {
                "name": m.name,
                "entries": dict(m.entries),
                "strict": m.strict,
                "default_value": m.default_value,
            }
            for m in definition.value_maps
        ],
    }


def definition_from_json(
    name: str, canonical_schema: str, data: dict[str, Any]
) -> SourceSchemaDefinition:
    return SourceSchemaDefinition(
        name=name,
        canonical_schema=canonical_schema,
        columns=tuple(data["columns"]),
        delimiter=data["delimiter"],
        encoding=data["encoding"],
        source_id_column=data["source_id_column"],
        tenant_code_column=data["tenant_code_column"],
        tenant_code_source=data["tenant_code_source"],
        field_mappings=tuple(_mapping_from_json(m) for m in data["field_mappings"]),
        value_maps=tuple(
            ValueMap(
                name=m["name"],
                entries=dict(m["entries"]),
                strict=m["strict"],
                default_value=m["default_value"],
            )
            for m in data["value_maps"]
        ),
        quote=data.get("quote", '"'),
        escape=data.get("escape", ""),
        header=data.get("header", True),
    )


_TRANSFORM_DEFAULTS = Transform(kind="")


def _mapping_to_json(mapping: FieldMapping) -> dict[str, Any]:
    steps = []
    for step in mapping.steps:
        params = {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in dataclasses.asdict(step).items()
            if value != getattr(_TRANSFORM_DEFAULTS, name) or name == "kind"
        }
        steps.append(step.kind if len(params) == 1 else params)
    return {
        "canonical_field": mapping.canonical_field,
        "source_column": mapping.source_column,
        "transforms": steps,
        "value_map": mapping.value_map,
        "source_columns": list(mapping.source_columns),
        "separator": mapping.separator,
        "required": mapping.required,
        "pattern": mapping.pattern,
    }


def _mapping_from_json(data: dict[str, Any]) -> FieldMapping:
    return FieldMapping(
        canonical_field=data["canonical_field"],
        source_column=data["source_column"],
        transforms=tuple(
            step
            if isinstance(step, str)
            else Transform(**{k: tuple(v) if isinstance(v, list) else v for k, v in step.items()})
            for step in data["transforms"]
        ),
        value_map=data["value_map"],
        source_columns=tuple(data.get("source_columns", ())),
        separator=data.get("separator", " "),
        required=data.get("required", False),
        pattern=data.get("pattern", ""),
    )


class SourceSchemaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, account_id: uuid.UUID, definition: SourceSchemaDefinition) -> SourceSchema:
        t = source_schemas
        statement = (
            insert(t)
            .values(
                id=new_id(),
                account_id=account_id,
                name=definition.name,
                canonical_schema=definition.canonical_schema,
                definition=definition_to_json(definition),
            )
            .on_conflict_do_nothing(
                index_elements=[t.c.account_id, t.c.name], index_where=t.c.deleted_at.is_(None)
            )
            .returning(t)
        )
        row = (await self.session.execute(statement)).first()
        if row is None:
            raise AlreadyExists(f"a source schema named '{definition.name}' already exists")
        return _source_schema(row)

    async def named(self, name: str) -> SourceSchema | None:
        t = source_schemas
        statement = select(t).where(t.c.name == name, t.c.deleted_at.is_(None))
        row = (await self.session.execute(statement)).first()
        return _source_schema(row) if row else None

    async def current(self) -> list[SourceSchema]:
        """Every source schema of the account (not deleted), by name: one query per file."""
        t = source_schemas
        statement = select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.name)
        return [_source_schema(row) for row in await self.session.execute(statement)]

    async def page(self, *, after: uuid.UUID | None, limit: int) -> list[SourceSchema]:
        t = source_schemas
        statement = select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.id).limit(limit)
        if after is not None:
            statement = statement.where(t.c.id > after)
        return [_source_schema(row) for row in await self.session.execute(statement)]


def _source_schema(row: Row[Any]) -> SourceSchema:
    return SourceSchema(
        id=row.id,
        definition=definition_from_json(row.name, row.canonical_schema, row.definition),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        latest_version=getattr(row, "latest_version", row.version),
    )


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        *,
        account_id: uuid.UUID,
        schema: str,
        file_id: uuid.UUID,
        sealed: Sequence[SealedRecord],
    ) -> tuple[int, int]:
        """Insert new records, update changed ones, leave unchanged ones; (created, updated)."""
        if not sealed:
            return 0, 0
        t = records
        statement = insert(t).values(
            [
                {
                    "id": new_id(),
                    "account_id": account_id,
                    "tenant_id": r.tenant_id,
                    "schema": schema,
                    "source": r.source,
                    "source_id": r.source_id,
                    "dedupe_key": r.dedupe_key,
                    "data": r.data,
                    "content_hash": r.content_hash,
                    "key_version": r.key_version,
                    "file_id": file_id,
                }
                for r in sealed
            ]
        )
        statement = statement.on_conflict_do_update(
            constraint="records_account_dedupe_key",
            set_={
                "data": statement.excluded.data,
                "content_hash": statement.excluded.content_hash,
                "key_version": statement.excluded.key_version,
                "file_id": statement.excluded.file_id,
                "updated_at": func.now(),
            },
            where=t.c.content_hash.is_distinct_from(statement.excluded.content_hash),
        ).returning(literal_column("(xmax = 0)").label("inserted"))
        inserted = [row.inserted for row in await self.session.execute(statement)]
        created = sum(1 for i in inserted if i)
        return created, len(inserted) - created

    async def page(
        self,
        *,
        schema: str,
        after: uuid.UUID | None,
        limit: int,
        tenant_id: uuid.UUID | None = None,
        tenant_ids: Collection[uuid.UUID] | None = None,
    ) -> list[CanonicalRecord]:
        t = records
        statement = select(t).where(t.c.schema == schema).order_by(t.c.id).limit(limit)
        if after is not None:
            statement = statement.where(t.c.id > after)
        if tenant_id is not None:
            statement = statement.where(t.c.tenant_id == tenant_id)
        if tenant_ids is not None:
            statement = statement.where(t.c.tenant_id.in_(list(tenant_ids)))
        return [
            CanonicalRecord(
                id=row.id,
                tenant_id=row.tenant_id,
                schema=row.schema,
                source=row.source,
                source_id=row.source_id,
                dedupe_key=row.dedupe_key,
                data=row.data,
                key_version=row.key_version,
                file_id=row.file_id,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in await self.session.execute(statement)
        ]


class RejectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(
        self,
        *,
        account_id: uuid.UUID,
        file_id: uuid.UUID,
        rows: Sequence[tuple[int, Sequence[str]]],
    ) -> None:
        if rows:
            await self.session.execute(
                insert(rejects).values(
                    [
                        {
                            "id": new_id(),
                            "account_id": account_id,
                            "file_id": file_id,
                            "row_number": row_number,
                            "reasons": list(reasons),
                        }
                        for row_number, reasons in rows
                    ]
                )
            )

    async def forget_file(self, file_id: uuid.UUID) -> None:
        """Drop the rejects of an earlier load of the file, before it is loaded again."""
        await self.session.execute(rejects.delete().where(rejects.c.file_id == file_id))

    async def page(
        self, *, file_id: uuid.UUID, after: uuid.UUID | None, limit: int
    ) -> list[Reject]:
        t = rejects
        statement = select(t).where(t.c.file_id == file_id).order_by(t.c.id).limit(limit)
        if after is not None:
            statement = statement.where(t.c.id > after)
        return [
            Reject(
                id=row.id,
                file_id=row.file_id,
                row_number=row.row_number,
                reasons=tuple(row.reasons),
                created_at=row.created_at,
            )
            for row in await self.session.execute(statement)
        ]


class LoadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(
        self,
        *,
        account_id: uuid.UUID,
        file_id: uuid.UUID,
        source_schema: str,
        source_schema_version: int | None = None,
    ) -> None:
        """Record the file's load as processing (again, when it is redelivered or re-sent)."""
        t = loads
        statement = insert(t).values(
            id=new_id(),
            account_id=account_id,
            file_id=file_id,
            source_schema=source_schema,
            source_schema_version=source_schema_version,
            status=PROCESSING,
            started_at=func.now(),
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                constraint="loads_account_file_key",
                set_={
                    "source_schema": statement.excluded.source_schema,
                    "source_schema_version": statement.excluded.source_schema_version,
                    "status": PROCESSING,
                    "rows_total": 0,
                    "created": 0,
                    "updated": 0,
                    "unchanged": 0,
                    "rejected": 0,
                    "reason": "",
                    "started_at": func.now(),
                    "finished_at": None,
                    "updated_at": func.now(),
                },
            )
        )

    async def finish(self, *, file_id: uuid.UUID, outcome: LoadOutcome) -> None:
        """The outcome, and the source schema and mapping version the file was loaded with
        (kept as started when the load used none, e.g. quarantined or given up)."""
        counts = outcome.counts
        used: dict[str, Any] = {}
        if outcome.source_schema:
            used = {
                "source_schema": outcome.source_schema,
                "source_schema_version": outcome.source_schema_version,
            }
        await self.session.execute(
            update(loads)
            .where(loads.c.file_id == file_id)
            .values(
                **used,
                status=outcome.status,
                reason=outcome.reason,
                rows_total=counts.rows_total,
                created=counts.created,
                updated=counts.updated,
                unchanged=counts.unchanged,
                rejected=counts.rejected,
                finished_at=func.now(),
                updated_at=func.now(),
            )
        )

    async def exists(self, file_id: uuid.UUID) -> bool:
        statement = select(loads.c.id).where(loads.c.file_id == file_id)
        return (await self.session.execute(statement)).first() is not None


# Revision 0002 (mapping depth): source schema versions, the blind index, search, reject
# details and reference data.


class SourceSchemaVersionRepository:
    """Every version of a source schema; `source_schemas` keeps the current one."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_id(self, schema_id: uuid.UUID) -> SourceSchema | None:
        t = source_schemas
        statement = select(t).where(t.c.id == schema_id, t.c.deleted_at.is_(None))
        row = (await self.session.execute(statement)).first()
        return _source_schema(row) if row else None

    async def record(
        self,
        *,
        account_id: uuid.UUID,
        schema_id: uuid.UUID,
        version: int,
        definition: SourceSchemaDefinition,
    ) -> None:
        await self.session.execute(
            insert(source_schema_versions).values(
                id=new_id(),
                account_id=account_id,
                source_schema_id=schema_id,
                version=version,
                definition=definition_to_json(definition),
            )
        )

    async def definition(self, schema: SourceSchema, version: int) -> SourceSchemaDefinition | None:
        t = source_schema_versions
        statement = select(t.c.definition).where(
            t.c.source_schema_id == schema.id, t.c.version == version
        )
        data = (await self.session.execute(statement)).scalar_one_or_none()
        if data is None:
            return None
        current = schema.definition
        return definition_from_json(current.name, current.canonical_schema, data)

    async def add_version(
        self, *, account_id: uuid.UUID, schema_id: uuid.UUID, definition: SourceSchemaDefinition
    ) -> SourceSchema:
        """Store `definition` as the next version (not current until promoted)."""
        t = source_schemas
        row = (
            await self.session.execute(
                update(t)
                .where(t.c.id == schema_id, t.c.deleted_at.is_(None))
                .values(latest_version=t.c.latest_version + 1, updated_at=func.now())
                .returning(t)
            )
        ).first()
        if row is None:
            raise NotFound(f"source schema {schema_id} does not exist")
        await self.record(
            account_id=account_id,
            schema_id=schema_id,
            version=row.latest_version,
            definition=definition,
        )
        return _source_schema(row)

    async def promote(self, schema: SourceSchema, version: int) -> SourceSchema:
        definition = await self.definition(schema, version)
        if definition is None:
            raise NotFound(f"source schema {schema.id} has no version {version}")
        t = source_schemas
        row = (
            await self.session.execute(
                update(t)
                .where(t.c.id == schema.id)
                .values(
                    definition=definition_to_json(definition),
                    version=version,
                    updated_at=func.now(),
                )
                .returning(t)
            )
        ).one()
        return _source_schema(row)


class RecordIndexRepository:
    """The blind index of records' searchable sensitive fields (digests only)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(
        self, *, account_id: uuid.UUID, schema: str, sealed: Sequence[SealedRecord]
    ) -> None:
        """Replace the index entries of these records: two statements per batch."""
        if not sealed:
            return
        t = record_index
        await self.session.execute(
            t.delete().where(t.c.dedupe_key.in_([r.dedupe_key for r in sealed]))
        )
        rows = [
            {
                "account_id": account_id,
                "tenant_id": r.tenant_id,
                "schema": schema,
                "dedupe_key": r.dedupe_key,
                "field": field,
                "digest": digest,
                "key_version": r.index_key_version,
            }
            for r in sealed
            for field, digest in r.index
        ]
        if rows:
            await self.session.execute(insert(t).values(rows))

    async def key_versions(self, *, schema: str, field: str) -> list[int]:
        t = record_index
        statement = (
            select(t.c.key_version)
            .where(t.c.schema == schema, t.c.field == field)
            .distinct()
            .order_by(t.c.key_version)
        )
        return list((await self.session.execute(statement)).scalars())


def _canonical_record(row: Row[Any]) -> CanonicalRecord:
    return CanonicalRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        schema=row.schema,
        source=row.source,
        source_id=row.source_id,
        dedupe_key=row.dedupe_key,
        data=row.data,
        key_version=row.key_version,
        file_id=row.file_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class RecordSearchRepository:
    """Records found by the exact value of a field, and content hashes for dry runs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self,
        *,
        schema: str,
        field: str,
        digests: Sequence[str] = (),
        equals: str | None = None,
        after: uuid.UUID | None,
        limit: int,
        tenant_id: uuid.UUID | None = None,
        tenant_ids: Collection[uuid.UUID] | None = None,
    ) -> list[CanonicalRecord]:
        """By blind-index `digests` (a sensitive field) or by plaintext `equals`."""
        t = records
        statement = select(t).where(t.c.schema == schema).order_by(t.c.id).limit(limit)
        if equals is not None:
            statement = statement.where(t.c.data[field].astext == equals)
        else:
            i = record_index
            matching = select(i.c.dedupe_key).where(
                i.c.schema == schema, i.c.field == field, i.c.digest.in_(list(digests))
            )
            statement = statement.where(t.c.dedupe_key.in_(matching))
        if after is not None:
            statement = statement.where(t.c.id > after)
        if tenant_id is not None:
            statement = statement.where(t.c.tenant_id == tenant_id)
        if tenant_ids is not None:
            statement = statement.where(t.c.tenant_id.in_(list(tenant_ids)))
        return [_canonical_record(row) for row in await self.session.execute(statement)]

    async def content_hashes(self, dedupe_keys: Sequence[str]) -> dict[str, str]:
        if not dedupe_keys:
            return {}
        t = records
        statement = select(t.c.dedupe_key, t.c.content_hash).where(
            t.c.dedupe_key.in_(list(dedupe_keys))
        )
        return {row.dedupe_key: row.content_hash for row in await self.session.execute(statement)}


class RejectRowRepository:
    """Rejects with the column of each reason and the kept original values."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, account_id: uuid.UUID, file_id: uuid.UUID, rows: Sequence[RejectRow]
    ) -> None:
        if not rows:
            return
        await self.session.execute(
            insert(rejects).values(
                [
                    {
                        "id": new_id(),
                        "account_id": account_id,
                        "file_id": file_id,
                        "row_number": row.row_number,
                        "reasons": list(row.reasons),
                        "reason_columns": list(row.reason_columns),
                        "value_columns": list(row.value_columns),
                        "values": list(row.values),
                    }
                    for row in rows
                ]
            )
        )

    async def page(
        self, *, file_id: uuid.UUID, after: uuid.UUID | None, limit: int
    ) -> list[Reject]:
        t = rejects
        statement = select(t).where(t.c.file_id == file_id).order_by(t.c.id).limit(limit)
        if after is not None:
            statement = statement.where(t.c.id > after)
        return [
            Reject(
                id=row.id,
                file_id=row.file_id,
                row_number=row.row_number,
                reasons=tuple(row.reasons),
                created_at=row.created_at,
                reason_columns=tuple(row.reason_columns),
                value_columns=tuple(row.value_columns),
                values=tuple(row.values),
            )
            for row in await self.session.execute(statement)
        ]


class ReferenceRepository:
    """Global reference data: read by anyone, written only through load_reference()."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_kind(self, kind: str | None) -> list[ReferenceItem]:
        t = reference_data
        statement = select(t).order_by(t.c.kind, t.c.natural_key)
        if kind:
            statement = statement.where(t.c.kind == kind)
        return [
            ReferenceItem(
                kind=row.kind,
                natural_key=row.natural_key,
                data=row.data,
                fixture_version=row.fixture_version,
            )
            for row in await self.session.execute(statement)
        ]

    async def load(self, items: Sequence[ReferenceItem]) -> tuple[int, int, int]:
        """(created, updated, unchanged), upserting by (kind, natural key) in one call."""
        payload = [
            {
                "id": str(new_id()),
                "kind": item.kind,
                "natural_key": item.natural_key,
                "data": dict(item.data),
                "fixture_version": item.fixture_version,
            }
            for item in items
        ]
        statement = text("SELECT * FROM canonical.load_reference(CAST(:items AS jsonb))")
        row = (
            await self.session.execute(statement, {"items": orjson.dumps(payload).decode()})
        ).one()
        return int(row.created), int(row.updated), int(row.unchanged)
