"""CanonicalService over gRPC: proto in, use case, proto out; no rules here."""

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from services.canonical.domain.loads import Reject
from services.canonical.domain.records import CanonicalRecord
from services.canonical.domain.reference import ReferenceItem, reference_item
from services.canonical.domain.schemas import CanonicalSchema
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchema,
    Transform,
    ValueMap,
)
from services.canonical.service_layer import records, schemas
from services.canonical.service_layer.ports import FileSource, KeyProvider, TenantDirectory
from services.runtime.db import Database
from services.runtime.errors import InvalidInput
from services.runtime.grpc_server import context_of_call
from services.runtime.outbox import Outbox


class CanonicalServicer(canonical_pb2_grpc.CanonicalServiceServicer):
    def __init__(
        self,
        *,
        db: Database,
        outbox: Outbox,
        keys: KeyProvider,
        files: FileSource | None = None,
        tenants: TenantDirectory | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.keys = keys
        # Needed by the dry runs (preview, diff) only.
        self.files = files
        self.tenants = tenants

    async def ListCanonicalSchemas(
        self, request: canonical_pb2.ListCanonicalSchemasRequest, context: Any
    ) -> canonical_pb2.ListCanonicalSchemasResponse:
        context_of_call()
        return canonical_pb2.ListCanonicalSchemasResponse(
            schemas=[_canonical_schema(s) for s in schemas.list_canonical_schemas()]
        )

    async def CreateSourceSchema(
        self, request: canonical_pb2.CreateSourceSchemaRequest, context: Any
    ) -> canonical_pb2.SourceSchema:
        created = await schemas.create_source_schema(
            db=self.db,
            outbox=self.outbox,
            ctx=context_of_call(),
            name=request.name,
            canonical_schema=request.canonical_schema,
            columns=list(request.columns),
            source_id_column=request.source_id_column,
            tenant_code_column=request.tenant_code_column,
            field_mappings=[_field_mapping(m) for m in request.field_mappings],
            value_maps=[_value_map(m) for m in request.value_maps],
            delimiter=request.delimiter,
            encoding=request.encoding,
            tenant_code_source=request.tenant_code_source,
            quote=request.quote or '"',
            escape=request.escape,
            header=not request.headerless,
        )
        return _source_schema(created)

    async def GetSourceSchema(
        self, request: canonical_pb2.GetSourceSchemaRequest, context: Any
    ) -> canonical_pb2.SourceSchema:
        found, shown = await schemas.get_source_schema(
            db=self.db, ctx=context_of_call(), schema_id=request.id, version=request.version
        )
        return _source_schema(found, shown)

    async def UpdateSourceSchema(
        self, request: canonical_pb2.UpdateSourceSchemaRequest, context: Any
    ) -> canonical_pb2.SourceSchema:
        changes: dict[str, Any] = {}
        for name in ("delimiter", "encoding", "source_id_column", "tenant_code_column"):
            if value := getattr(request, name):
                changes[name] = value
        for name in ("tenant_code_source", "quote", "escape"):
            if value := getattr(request, name):
                changes[name] = value
        if request.columns:
            changes["columns"] = tuple(request.columns)
        if request.field_mappings:
            changes["field_mappings"] = tuple(_field_mapping(m) for m in request.field_mappings)
        if request.value_maps:
            changes["value_maps"] = tuple(_value_map(m) for m in request.value_maps)
        if request.headerless:
            if request.headerless not in ("true", "false"):
                raise InvalidInput("headerless must be 'true' or 'false'")
            changes["header"] = request.headerless == "false"
        updated, shown = await schemas.update_source_schema(
            db=self.db, outbox=self.outbox, ctx=context_of_call(), schema_id=request.id, **changes
        )
        return _source_schema(updated, shown)

    async def PromoteSourceSchema(
        self, request: canonical_pb2.PromoteSourceSchemaRequest, context: Any
    ) -> canonical_pb2.SourceSchema:
        promoted = await schemas.promote_source_schema(
            db=self.db,
            outbox=self.outbox,
            ctx=context_of_call(),
            schema_id=request.id,
            version=request.version,
        )
        return _source_schema(promoted)

    async def AddMissingFields(
        self, request: canonical_pb2.AddMissingFieldsRequest, context: Any
    ) -> canonical_pb2.SourceSchema:
        updated, shown = await schemas.add_missing_fields(
            db=self.db, outbox=self.outbox, ctx=context_of_call(), schema_id=request.id
        )
        return _source_schema(updated, shown)

    async def PreviewSourceSchema(
        self, request: canonical_pb2.PreviewSourceSchemaRequest, context: Any
    ) -> canonical_pb2.PreviewSourceSchemaResponse:
        ctx = context_of_call()
        preview = await schemas.preview_source_schema(
            db=self.db,
            files=self.files,
            ctx=ctx,
            schema_id=request.id,
            file_id=request.file_id,
            version=request.version,
            rows=request.rows,
        )
        response = canonical_pb2.PreviewSourceSchemaResponse(
            version=preview.version, rows_read=preview.rows_read
        )
        for row in preview.rows:
            message = response.rows.add(
                row_number=row.row_number, source_id=row.source_id, tenant_code=row.tenant_code
            )
            message.fields.update(
                {
                    name: schemas.SENSITIVE_SHOWN if name in preview.sensitive else value
                    for name, value in row.fields.items()
                }
            )
        value_maps = {m.canonical_field: m.value_map for m in preview.mappings}
        for code in preview.coverage:
            response.unmapped_codes.add(
                field=code.field,
                value_map=value_maps.get(code.field, ""),
                code=code.code,
                count=code.count,
                sample_rows=code.sample_rows,
            )
        for reject in preview.rejects:
            response.rejects.add(
                file_id=request.file_id,
                row_number=reject.row_number,
                reasons=list(reject.reasons),
                reason_columns=list(reject.reason_columns),
            )
        return response

    async def DiffSourceSchema(
        self, request: canonical_pb2.DiffSourceSchemaRequest, context: Any
    ) -> canonical_pb2.DiffSourceSchemaResponse:
        diff = await schemas.diff_source_schema(
            db=self.db,
            files=self.files,
            tenants=self.tenants,
            ctx=context_of_call(),
            schema_id=request.id,
            file_id=request.file_id,
            version=request.version,
        )
        counts = diff.counts
        return canonical_pb2.DiffSourceSchemaResponse(
            version=diff.version,
            current_version=diff.current_version,
            rows_total=counts.rows_total,
            created=counts.created,
            changed=counts.changed,
            unchanged=counts.unchanged,
            rejected=counts.rejected,
        )

    async def ListReferenceData(
        self, request: canonical_pb2.ListReferenceDataRequest, context: Any
    ) -> canonical_pb2.ListReferenceDataResponse:
        items = await schemas.list_reference_data(
            db=self.db, ctx=context_of_call(), kind=request.kind
        )
        return canonical_pb2.ListReferenceDataResponse(items=[_reference_item(i) for i in items])

    async def DumpFixtures(
        self, request: canonical_pb2.DumpFixturesRequest, context: Any
    ) -> canonical_pb2.DumpFixturesResponse:
        items = await schemas.dump_fixtures(db=self.db, ctx=context_of_call(), kind=request.kind)
        return canonical_pb2.DumpFixturesResponse(items=[_reference_item(i) for i in items])

    async def LoadFixtures(
        self, request: canonical_pb2.LoadFixturesRequest, context: Any
    ) -> canonical_pb2.LoadFixturesResponse:
        created, updated, unchanged = await schemas.load_fixtures(
            db=self.db,
            ctx=context_of_call(),
            items=[
                reference_item(
                    kind=i.kind,
                    natural_key=i.natural_key,
                    data=json_format.MessageToDict(i.data),
                    fixture_version=i.fixture_version,
                )
                for i in request.items
            ],
        )
        return canonical_pb2.LoadFixturesResponse(
            created=created, updated=updated, unchanged=unchanged
        )

    async def ExportRejects(
        self, request: canonical_pb2.ExportRejectsRequest, context: Any
    ) -> AsyncIterator[canonical_pb2.RejectsChunk]:
        chunks = records.export_rejects(db=self.db, ctx=context_of_call(), file_id=request.file_id)
        async for data in chunks:
            yield canonical_pb2.RejectsChunk(data=data)

    async def ListSourceSchemas(
        self, request: canonical_pb2.ListSourceSchemasRequest, context: Any
    ) -> canonical_pb2.ListSourceSchemasResponse:
        items, token = await schemas.list_source_schemas(
            db=self.db, ctx=context_of_call(), size=request.page_size, token=request.page_token
        )
        return canonical_pb2.ListSourceSchemasResponse(
            source_schemas=[_source_schema(s) for s in items], next_page_token=token
        )

    async def ListRecords(
        self, request: canonical_pb2.ListRecordsRequest, context: Any
    ) -> canonical_pb2.ListRecordsResponse:
        items, token = await records.list_records(
            db=self.db,
            keys=self.keys,
            ctx=context_of_call(),
            schema=request.schema,
            size=request.page_size,
            token=request.page_token,
            tenant_id=request.tenant_id,
            field=request.field,
            equals=request.equals,
        )
        return canonical_pb2.ListRecordsResponse(
            records=[_record(r) for r in items], next_page_token=token
        )

    async def ListRejects(
        self, request: canonical_pb2.ListRejectsRequest, context: Any
    ) -> canonical_pb2.ListRejectsResponse:
        items, token = await records.list_rejects(
            db=self.db,
            ctx=context_of_call(),
            file_id=request.file_id,
            size=request.page_size,
            token=request.page_token,
        )
        return canonical_pb2.ListRejectsResponse(
            rejects=[_reject(r) for r in items], next_page_token=token
        )


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _canonical_schema(schema: CanonicalSchema) -> canonical_pb2.CanonicalSchema:
    return canonical_pb2.CanonicalSchema(
        name=schema.name,
        version=schema.version,
        description=schema.description,
        fields=[
            canonical_pb2.CanonicalField(
                name=f.name,
                type=f.type,
                required=f.required,
                sensitive=f.sensitive,
                max_length=f.max_length,
                stored_width=f.stored_width,
                searchable=f.searchable,
                allowed_values=list(f.allowed_values),
            )
            for f in schema.fields
        ],
    )


def _source_schema(schema: SourceSchema, shown: int = 0) -> canonical_pb2.SourceSchema:
    d = schema.definition
    return canonical_pb2.SourceSchema(
        id=str(schema.id),
        name=d.name,
        canonical_schema=d.canonical_schema,
        columns=list(d.columns),
        delimiter=d.delimiter,
        encoding=d.encoding,
        source_id_column=d.source_id_column,
        tenant_code_column=d.tenant_code_column,
        tenant_code_source=d.tenant_code_source,
        field_mappings=[_field_mapping_message(m) for m in d.field_mappings],
        value_maps=[
            canonical_pb2.ValueMap(
                name=m.name, entries=dict(m.entries), strict=m.strict, default_value=m.default_value
            )
            for m in d.value_maps
        ],
        version=schema.version,
        created_at=_timestamp(schema.created_at),
        updated_at=_timestamp(schema.updated_at),
        quote=d.quote,
        escape=d.escape,
        headerless=not d.header,
        latest_version=schema.latest_version,
        shown_version=shown or schema.version,
    )


def _field_mapping(m: canonical_pb2.FieldMapping) -> FieldMapping:
    return FieldMapping(
        canonical_field=m.canonical_field,
        source_column=m.source_column,
        transforms=(
            *m.transforms,
            *(
                Transform(
                    kind=t.kind,
                    value=t.value,
                    separator=t.separator,
                    part=t.part,
                    pattern=t.pattern,
                    group=t.group,
                    formats=tuple(t.formats),
                    time_zone=t.time_zone,
                    locale=t.locale,
                    true_words=tuple(t.true_words),
                    false_words=tuple(t.false_words),
                )
                for t in m.steps
            ),
        ),
        value_map=m.value_map,
        source_columns=tuple(m.source_columns),
        separator=m.separator or " ",
        required=m.required,
        pattern=m.pattern,
    )


def _field_mapping_message(m: FieldMapping) -> canonical_pb2.FieldMapping:
    simple = [t for t in m.transforms if isinstance(t, str)]
    steps = [t for t in m.transforms if not isinstance(t, str)]
    return canonical_pb2.FieldMapping(
        canonical_field=m.canonical_field,
        source_column=m.source_column,
        transforms=simple,
        value_map=m.value_map,
        source_columns=list(m.source_columns),
        separator=m.separator,
        steps=[
            canonical_pb2.Transform(
                kind=t.kind,
                value=t.value,
                separator=t.separator,
                part=t.part,
                pattern=t.pattern,
                group=t.group,
                formats=list(t.formats),
                time_zone=t.time_zone,
                locale=t.locale,
                true_words=list(t.true_words),
                false_words=list(t.false_words),
            )
            for t in steps
        ],
        required=m.required,
        pattern=m.pattern,
    )


def _value_map(m: canonical_pb2.ValueMap) -> ValueMap:
    return ValueMap(
        name=m.name, entries=dict(m.entries), strict=m.strict, default_value=m.default_value
    )


def _reference_item(item: ReferenceItem) -> canonical_pb2.ReferenceItem:
    message = canonical_pb2.ReferenceItem(
        kind=item.kind, natural_key=item.natural_key, fixture_version=item.fixture_version
    )
    message.data.update(dict(item.data))
    return message


def _record(record: CanonicalRecord) -> canonical_pb2.Record:
    message = canonical_pb2.Record(
        id=str(record.id),
        tenant_id=str(record.tenant_id),
        schema=record.schema,
        source=record.source,
        source_id=record.source_id,
        dedupe_key=record.dedupe_key,
        file_id=str(record.file_id),
        created_at=_timestamp(record.created_at),
        updated_at=_timestamp(record.updated_at),
    )
    message.fields.update(record.data)
    return message


def _reject(reject: Reject) -> canonical_pb2.Reject:
    return canonical_pb2.Reject(
        id=str(reject.id),
        file_id=str(reject.file_id),
        row_number=reject.row_number,
        reasons=list(reject.reasons),
        created_at=_timestamp(reject.created_at),
        reason_columns=list(reject.reason_columns),
    )
