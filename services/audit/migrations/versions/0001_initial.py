"""The audit log: hash-chained events (append-only in the database), chain heads, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from collections.abc import Sequence

from alembic import op

from services.runtime.migrations import (
    create_outbox,
    create_processed_events,
    enable_account_rls,
    grant_app,
)

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "audit"
HASH = "'^[0-9a-f]{64}$'"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {SCHEMA}.events (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            sequence bigint NOT NULL CHECK (sequence > 0),
            event_id uuid NOT NULL UNIQUE,
            type text NOT NULL,
            tenant_id uuid,
            actor_id text NOT NULL,
            actor_kind text NOT NULL,
            source_address text NOT NULL,
            correlation_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            payload jsonb NOT NULL,
            prev_hash text NOT NULL CHECK (prev_hash ~ {HASH}),
            hash text NOT NULL CHECK (hash ~ {HASH}),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT events_account_sequence_key UNIQUE (account_id, sequence)
        )
        """
    )
    op.execute(
        f"CREATE INDEX events_account_type_sequence_idx"
        f" ON {SCHEMA}.events (account_id, type, sequence)"
    )
    enable_account_rls(op, SCHEMA, "events")
    grant_app(op, SCHEMA, "events", "SELECT, INSERT")
    # Append-only for every role that can reach the table, the owner included.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events are append-only'
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'an audit event is never changed or removed';
        END
        $$
        """
    )
    op.execute(
        f"CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.events"
        f" FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON {SCHEMA}.events"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change()"
    )

    op.execute(
        f"""
        CREATE TABLE {SCHEMA}.chain_heads (
            account_id uuid PRIMARY KEY,
            sequence bigint NOT NULL CHECK (sequence >= 0),
            hash text NOT NULL CHECK (hash ~ {HASH}),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    enable_account_rls(op, SCHEMA, "chain_heads")
    grant_app(op, SCHEMA, "chain_heads", "SELECT, INSERT, UPDATE")

    create_outbox(op, SCHEMA)
    create_processed_events(op, SCHEMA)


def downgrade() -> None:
    for table in ("processed_events", "outbox", "chain_heads"):
        op.execute(f"DROP TABLE {SCHEMA}.{table}")
    # DROP TABLE is neither DELETE nor TRUNCATE: the triggers go with the table.
    op.execute(f"DROP TABLE {SCHEMA}.events")
    op.execute(f"DROP FUNCTION {SCHEMA}.refuse_change()")
