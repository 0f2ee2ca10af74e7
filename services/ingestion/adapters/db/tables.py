"""SQLAlchemy Core tables of the `ingestion` schema, mirroring migrations/versions."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    Time,
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
    Column("quota_bytes", BigInteger),
    Column("quota_files", BigInteger),
    Column("expected_by", Time),
    Column("expected_timezone", Text),
    # When the schedule was set: windows that ended before it are never reported late.
    Column("expected_since", DateTime(timezone=True)),
    Column("last_late_deadline", DateTime(timezone=True)),
    # What the zone holds, kept by a trigger on files (migration 0003).
    Column("stored_files", BigInteger, nullable=False, server_default="0"),
    Column("stored_bytes", BigInteger, nullable=False, server_default="0"),
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
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("failures_since", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
    Column("lockouts", Integer, nullable=False, server_default="0"),
)

sftp_login_keys = Table(
    "sftp_login_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("login_id", Uuid, ForeignKey(sftp_logins.c.id), nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    *timestamps(),
)

retired_usernames = Table(
    "retired_usernames",
    metadata,
    Column("username", Text, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("login_id", Uuid, nullable=False),
    *timestamps(),
)

# Platform security state (no account, no RLS): failed sign-ins per source address.
address_lockouts = Table(
    "address_lockouts",
    metadata,
    Column("address", Text, primary_key=True),
    Column("failed_attempts", Integer, nullable=False, server_default="0"),
    Column("failures_since", DateTime(timezone=True)),
    Column("locked_until", DateTime(timezone=True)),
    Column("lockouts", Integer, nullable=False, server_default="0"),
    Column("targeted_accounts", ARRAY(Uuid), nullable=False, server_default="{}"),
    *timestamps(),
)

account_tiers = Table(
    "account_tiers",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("tier", Text, nullable=False),
    *timestamps(),
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
    Column("login_id", Uuid),
    Column("completed_at", DateTime(timezone=True)),
)

# Receipts and reject files written back to a zone, for its logins to download.
zone_documents = Table(
    "zone_documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("dropzone_id", Uuid, ForeignKey(dropzones.c.id), nullable=False),
    Column("file_id", Uuid, ForeignKey(files.c.id), nullable=False),
    Column("folder", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("storage_path", Text, nullable=False),
    *timestamps(),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
