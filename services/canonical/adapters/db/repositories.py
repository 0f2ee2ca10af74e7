"""Repositories of the canonical schema; each works inside the caller's RLS-scoped session."""

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.canonical.adapters.db.tables import loads, records, rejects, source_schemas
from services.canonical.domain.loads import PROCESSING, LoadOutcome, Reject
from services.canonical.domain.records import CanonicalRecord, SealedRecord
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchema,
    SourceSchemaDefinition,
    ValueMap,
)
from services.runtime.errors import AlreadyExists
from services.runtime.ids import new_id


def definition_to_json(definition: SourceSchemaDefinition) -> dict[str, Any]:
    return {
        "columns": list(definition.columns),
        "delimiter": definition.delimiter,
        "encoding": definition.encoding,
        "source_id_column": definition.source_id_column,
        "tenant_code_column": definition.tenant_code_column,
        "tenant_code_source": definition.tenant_code_source,
        "field_mappings": [
            {
                "canonical_field": m.canonical_field,
                "source_column": m.source_column,
                "transforms": list(m.transforms),
                "value_map": m.value_map,
            }
            for m in definition.field_mappings
        ],
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
        field_mappings=tuple(
            FieldMapping(
                canonical_field=m["canonical_field"],
                source_column=m["source_column"],
                transforms=tuple(m["transforms"]),
                value_map=m["value_map"],
            )
            for m in data["field_mappings"]
        ),
        value_maps=tuple(
            ValueMap(
                name=m["name"],
                entries=dict(m["entries"]),
                strict=m["strict"],
                default_value=m["default_value"],
            )
            for m in data["value_maps"]
        ),
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

    async def start(self, *, account_id: uuid.UUID, file_id: uuid.UUID, source_schema: str) -> None:
        """Record the file's load as processing (again, when it is redelivered or re-sent)."""
        t = loads
        statement = insert(t).values(
            id=new_id(),
            account_id=account_id,
            file_id=file_id,
            source_schema=source_schema,
            status=PROCESSING,
            started_at=func.now(),
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                constraint="loads_account_file_key",
                set_={
                    "source_schema": statement.excluded.source_schema,
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
        counts = outcome.counts
        await self.session.execute(
            update(loads)
            .where(loads.c.file_id == file_id)
            .values(
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
