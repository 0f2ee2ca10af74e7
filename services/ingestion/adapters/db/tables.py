"""SQLAlchemy Core tables of the `ingestion` schema, mirroring migrations/versions."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.runtime.db import timestamps
from services.runtime.messaging import processed_events_table
from services.runtime.outbox import outbox_table

SCHEMA = "ingestion"

metadata = MetaData(schema=SCHEMA)


dropzones = Table(
    "dropzones",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("tenant_ids", ARRAY(Uuid), nullable=False),
    # [{"pattern": "customers_*.csv", "source_schema": "dms_customers"}, ...]
    Column("routes", JSONB, nullable=False),
    *timestamps(),
    Column("deleted_at", DateTime(timezone=True)),
)

sftp_logins = Table(
    "sftp_logins",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("dropzone_id", Uuid, ForeignKey(dropzones.c.id), nullable=False),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    *timestamps(),
    Column("disabled_at", DateTime(timezone=True)),
)

files = Table(
    "files",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("dropzone_id", Uuid, ForeignKey(dropzones.c.id), nullable=False),
    Column("name", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    # Relative to the configured storage directory.
    Column("storage_path", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_reason", Text, nullable=False, server_default=""),
    Column("duplicate_of", Uuid, ForeignKey("ingestion.files.id")),
    Column("source_schema", Text, nullable=False, server_default=""),
    Column("rows_total", BigInteger, nullable=False, server_default="0"),
    Column("rows_created", BigInteger, nullable=False, server_default="0"),
    Column("rows_updated", BigInteger, nullable=False, server_default="0"),
    Column("rows_unchanged", BigInteger, nullable=False, server_default="0"),
    Column("rows_rejected", BigInteger, nullable=False, server_default="0"),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
