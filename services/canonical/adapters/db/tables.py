"""The tables of the `canonical` schema, mirroring migrations/versions/0001_initial.py."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.runtime.db import timestamps
from services.runtime.messaging import processed_events_table
from services.runtime.outbox import outbox_table

SCHEMA = "canonical"

metadata = MetaData(schema=SCHEMA)


source_schemas = Table(
    "source_schemas",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("canonical_schema", Text, nullable=False),
    Column("definition", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    *timestamps(),
    Column("deleted_at", DateTime(timezone=True)),
    Index(
        "source_schemas_account_name_key",
        "account_id",
        "name",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

records = Table(
    "records",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("schema", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("file_id", Uuid, nullable=False),
    *timestamps(),
    UniqueConstraint("account_id", "dedupe_key", name="records_account_dedupe_key"),
    Index("records_account_schema_id", "account_id", "schema", "id"),
    Index("records_account_schema_tenant_id", "account_id", "schema", "tenant_id", "id"),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("file_id", Uuid, nullable=False),
    Column("row_number", BigInteger, nullable=False),
    Column("reasons", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("rejects_account_file_id", "account_id", "file_id", "id"),
)

loads = Table(
    "loads",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("file_id", Uuid, nullable=False),
    Column("source_schema", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("rows_total", BigInteger, nullable=False, server_default=text("0")),
    Column("created", BigInteger, nullable=False, server_default=text("0")),
    Column("updated", BigInteger, nullable=False, server_default=text("0")),
    Column("unchanged", BigInteger, nullable=False, server_default=text("0")),
    Column("rejected", BigInteger, nullable=False, server_default=text("0")),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *timestamps(),
    UniqueConstraint("account_id", "file_id", name="loads_account_file_key"),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("kind", Text, nullable=False),
    Column("file_id", Uuid, nullable=False),
    Column("file_name", Text, nullable=False, server_default=text("''")),
    Column("size_bytes", BigInteger, nullable=False, server_default=text("0")),
    Column("source_schema", Text, nullable=False),
    Column("tenant_ids", ARRAY(Uuid), nullable=False),
    Column("reprocess", Boolean, nullable=False, server_default=text("false")),
    Column("event_id", Uuid, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("rows_processed", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_total", BigInteger, nullable=False, server_default=text("0")),
    Column("created", BigInteger, nullable=False, server_default=text("0")),
    Column("updated", BigInteger, nullable=False, server_default=text("0")),
    Column("unchanged", BigInteger, nullable=False, server_default=text("0")),
    Column("rejected", BigInteger, nullable=False, server_default=text("0")),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("last_error", Text, nullable=False, server_default=text("''")),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    *timestamps(),
    Index("jobs_account_id", "account_id", "id"),
    Index("jobs_account_file_id", "account_id", "file_id", "id"),
)

# Revision 0002 (mapping depth): versions of source schemas, the mapping version of a load,
# reject details, the blind index and reference data.

source_schemas.append_column(
    Column("latest_version", Integer, nullable=False, server_default=text("1"))
)
loads.append_column(Column("source_schema_version", Integer))
rejects.append_column(
    Column("reason_columns", ARRAY(Text), nullable=False, server_default=text("'{}'"))
)
rejects.append_column(
    Column("value_columns", ARRAY(Text), nullable=False, server_default=text("'{}'"))
)
rejects.append_column(Column("values", ARRAY(Text), nullable=False, server_default=text("'{}'")))

source_schema_versions = Table(
    "source_schema_versions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("source_schema_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSONB, nullable=False),
    *timestamps(),
    UniqueConstraint(
        "account_id", "source_schema_id", "version", name="source_schema_versions_key"
    ),
)

record_index = Table(
    "record_index",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("schema", Text, nullable=False),
    Column("dedupe_key", Text, primary_key=True),
    Column("field", Text, primary_key=True),
    Column("digest", Text, nullable=False),
    Column("key_version", Integer, nullable=False),
    *timestamps(),
    Index("record_index_lookup", "account_id", "schema", "field", "digest"),
)

reference_data = Table(
    "reference_data",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("natural_key", Text, nullable=False),
    Column("data", JSONB, nullable=False),
    Column("fixture_version", Integer, nullable=False),
    *timestamps(),
    UniqueConstraint("kind", "natural_key", name="reference_data_kind_natural_key"),
)
