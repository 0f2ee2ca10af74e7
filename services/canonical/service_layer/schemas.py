"""Use cases on schemas: the canonical schemas shipped, and an account's source schemas."""

from collections.abc import Iterable

from canopy.canonical.v1 import canonical_pb2
from services.canonical.adapters.db.repositories import SourceSchemaRepository
from services.canonical.domain.schemas import CANONICAL_SCHEMAS, CanonicalSchema
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchema,
    ValueMap,
    define_source_schema,
)
from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.events import new_event
from services.runtime.outbox import Outbox
from services.runtime.pages import decode_token, next_token, page_size

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
) -> SourceSchema:
    account_id = ctx.require_account()
    definition = define_source_schema(
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
