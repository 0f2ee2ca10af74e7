"""The tables of the `canonical` schema, mirroring migrations/versions/0001_initial.py."""

from sqlalchemy import (
    BigInteger,
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
