"""Source schemas, canonical records, rejects, loads, outbox and processed events.

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
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "canonical"
TABLES = ("source_schemas", "records", "rejects", "loads")


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {S}.source_schemas ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " name text NOT NULL,"
        " canonical_schema text NOT NULL,"
        " definition jsonb NOT NULL,"
        " version integer NOT NULL DEFAULT 1,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX source_schemas_account_name_key ON {S}.source_schemas"
        " (account_id, name) WHERE deleted_at IS NULL"
    )

    op.execute(
        f"CREATE TABLE {S}.records ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " tenant_id uuid NOT NULL,"
        " schema text NOT NULL,"
        " source text NOT NULL,"
        " source_id text NOT NULL,"
        " dedupe_key text NOT NULL,"
        " data jsonb NOT NULL,"
        " content_hash text NOT NULL,"
        " key_version integer NOT NULL,"
        " file_id uuid NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT records_account_dedupe_key UNIQUE (account_id, dedupe_key))"
    )
    op.execute(f"CREATE INDEX records_account_schema_id ON {S}.records (account_id, schema, id)")
    op.execute(
        f"CREATE INDEX records_account_schema_tenant_id ON {S}.records"
        " (account_id, schema, tenant_id, id)"
    )

    op.execute(
        f"CREATE TABLE {S}.rejects ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " file_id uuid NOT NULL,"
        " row_number bigint NOT NULL,"
        " reasons text[] NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(f"CREATE INDEX rejects_account_file_id ON {S}.rejects (account_id, file_id, id)")

    op.execute(
        f"CREATE TABLE {S}.loads ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " file_id uuid NOT NULL,"
        " source_schema text NOT NULL,"
        " status text NOT NULL,"
        " rows_total bigint NOT NULL DEFAULT 0,"
        " created bigint NOT NULL DEFAULT 0,"
        " updated bigint NOT NULL DEFAULT 0,"
        " unchanged bigint NOT NULL DEFAULT 0,"
        " rejected bigint NOT NULL DEFAULT 0,"
        " reason text NOT NULL DEFAULT '',"
        " started_at timestamptz,"
        " finished_at timestamptz,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT loads_account_file_key UNIQUE (account_id, file_id))"
    )

    for table in TABLES:
        enable_account_rls(op, S, table)
        grant_app(op, S, table)
    # Records belong to tenants: a caller scoped to some tenants sees only theirs.
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.records AS RESTRICTIVE USING ("
        "(select current_setting('app.all_tenants', true)) = 'on'"
        " OR tenant_id = ANY ("
        "(select nullif(current_setting('app.tenant_ids', true), ''))::uuid[]))"
    )

    create_outbox(op, S)
    create_processed_events(op, S)


def downgrade() -> None:
    for table in (*TABLES, "outbox", "processed_events"):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")
