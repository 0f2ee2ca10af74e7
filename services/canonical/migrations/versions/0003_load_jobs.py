"""Load jobs: one row per queued load of a file, with its status, attempts and progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-02
"""

from collections.abc import Sequence

from alembic import op

from services.runtime.migrations import enable_account_rls, grant_app

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "canonical"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {S}.jobs ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " kind text NOT NULL,"
        " file_id uuid NOT NULL,"
        " file_name text NOT NULL DEFAULT '',"
        " size_bytes bigint NOT NULL DEFAULT 0,"
        " source_schema text NOT NULL,"
        " tenant_ids uuid[] NOT NULL,"
        " reprocess boolean NOT NULL DEFAULT false,"
        # The file.received event the job was queued for.
        " event_id uuid NOT NULL,"
        " status text NOT NULL,"
        " attempts integer NOT NULL DEFAULT 0,"
        " rows_processed bigint NOT NULL DEFAULT 0,"
        " rows_total bigint NOT NULL DEFAULT 0,"
        " created bigint NOT NULL DEFAULT 0,"
        " updated bigint NOT NULL DEFAULT 0,"
        " unchanged bigint NOT NULL DEFAULT 0,"
        " rejected bigint NOT NULL DEFAULT 0,"
        " reason text NOT NULL DEFAULT '',"
        " last_error text NOT NULL DEFAULT '',"
        " started_at timestamptz,"
        " finished_at timestamptz,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(f"CREATE INDEX jobs_account_id ON {S}.jobs (account_id, id)")
    op.execute(f"CREATE INDEX jobs_account_file_id ON {S}.jobs (account_id, file_id, id)")
    enable_account_rls(op, S, "jobs")
    grant_app(op, S, "jobs", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {S}.jobs")
