"""The audit schema's tables, mirroring migrations/versions (the migrations are the truth)."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from services.runtime.db import timestamps
from services.runtime.messaging import processed_events_table
from services.runtime.outbox import outbox_table

SCHEMA = "audit"

metadata = MetaData(schema=SCHEMA)


# Append-only: the app role may only SELECT and INSERT, and a trigger refuses UPDATE,
# DELETE and TRUNCATE for everyone else.
events = Table(
    "events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("tenant_id", Uuid),
    Column("actor_id", Text, nullable=False),
    Column("actor_kind", Text, nullable=False),
    Column("source_address", Text, nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("payload", JSONB, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    *timestamps(),
    UniqueConstraint("account_id", "sequence", name="events_account_sequence_key"),
    Index("events_account_type_sequence_idx", "account_id", "type", "sequence"),
)

chain_heads = Table(
    "chain_heads",
    metadata,
    Column("account_id", Uuid, primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),
    *timestamps(),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
