"""CanonicalService over gRPC: proto in, use case, proto out; no rules here."""

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from services.canonical.domain.loads import Reject
from services.canonical.domain.records import CanonicalRecord
from services.canonical.domain.schemas import CanonicalSchema
from services.canonical.domain.source_schemas import FieldMapping, SourceSchema, ValueMap
from services.canonical.service_layer import records, schemas
from services.canonical.service_layer.ports import KeyProvider
from services.runtime.db import Database
from services.runtime.grpc_server import context_of_call
from services.runtime.outbox import Outbox


class CanonicalServicer(canonical_pb2_grpc.CanonicalServiceServicer):
    def __init__(self, *, db: Database, outbox: Outbox, keys: KeyProvider) -> None:
        self.db = db
        self.outbox = outbox
        self.keys = keys

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
            field_mappings=[
                FieldMapping(
                    canonical_field=m.canonical_field,
                    source_column=m.source_column,
                    transforms=tuple(m.transforms),
                    value_map=m.value_map,
                )
                for m in request.field_mappings
            ],
            value_maps=[
                ValueMap(
                    name=m.name,
                    entries=dict(m.entries),
                    strict=m.strict,
                    default_value=m.default_value,
                )
                for m in request.value_maps
            ],
            delimiter=request.delimiter,
            encoding=request.encoding,
            tenant_code_source=request.tenant_code_source,
        )
        return _source_schema(created)

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
            )
            for f in schema.fields
        ],
    )


def _source_schema(schema: SourceSchema) -> canonical_pb2.SourceSchema:
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
        field_mappings=[
            canonical_pb2.FieldMapping(
                canonical_field=m.canonical_field,
                source_column=m.source_column,
                transforms=list(m.transforms),
                value_map=m.value_map,
            )
            for m in d.field_mappings
        ],
        value_maps=[
            canonical_pb2.ValueMap(
                name=m.name, entries=dict(m.entries), strict=m.strict, default_value=m.default_value
            )
            for m in d.value_maps
        ],
        version=schema.version,
        created_at=_timestamp(schema.created_at),
        updated_at=_timestamp(schema.updated_at),
    )


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
    )
