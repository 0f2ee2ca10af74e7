"""Drop zones, SFTP logins, ingested files, outbox and processed events.

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

S = "ingestion"
OWNER = f"{S}_owner"
APP = f"{S}_app"
STATUSES = ", ".join(
    f"'{s}'"
    for s in (
        "received",
        "processing",
        "loaded",
        "partially_loaded",
        "failed",
        "duplicate",
        "quarantined",
    )
)


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {S}.dropzones (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            name text NOT NULL,
            tenant_ids uuid[] NOT NULL CHECK (cardinality(tenant_ids) > 0),
            routes jsonb NOT NULL CHECK (jsonb_typeof(routes) = 'array'),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        f"CREATE UNIQUE INDEX dropzones_name_key ON {S}.dropzones (account_id, name)"
        " WHERE deleted_at IS NULL"
    )
    enable_account_rls(op, S, "dropzones")
    grant_app(op, S, "dropzones", "SELECT, INSERT, UPDATE")

    op.execute(
        f"""
        CREATE TABLE {S}.sftp_logins (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            dropzone_id uuid NOT NULL REFERENCES {S}.dropzones (id),
            username text NOT NULL,
            password_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            disabled_at timestamptz
        )
        """
    )
    # Usernames are unique across the platform: the SFTP server finds a login by it alone.
    op.execute(f"CREATE UNIQUE INDEX sftp_logins_username_key ON {S}.sftp_logins (lower(username))")
    op.execute(f"CREATE INDEX sftp_logins_dropzone_idx ON {S}.sftp_logins (dropzone_id)")
    enable_account_rls(op, S, "sftp_logins")
    grant_app(op, S, "sftp_logins", "SELECT, INSERT, UPDATE")
    # FORCE applies RLS to the owner too; this policy lets only the owner (and so only the
    # SECURITY DEFINER function below) read logins before an account is known.
    op.execute(f"CREATE POLICY login_lookup ON {S}.sftp_logins FOR SELECT TO {OWNER} USING (true)")
    op.execute(
        f"""
        CREATE FUNCTION {S}.find_sftp_login(p_username text)
        RETURNS TABLE (
            id uuid, account_id uuid, dropzone_id uuid, password_hash text, disabled_at timestamptz
        )
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, {S}
        AS $$
            SELECT l.id, l.account_id, l.dropzone_id, l.password_hash, l.disabled_at
            FROM {S}.sftp_logins AS l
            WHERE lower(l.username) = lower(p_username)
        $$
        """
    )
    op.execute(f"ALTER FUNCTION {S}.find_sftp_login(text) OWNER TO {OWNER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.find_sftp_login(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.find_sftp_login(text) TO {APP}")

    op.execute(
        f"""
        CREATE TABLE {S}.files (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            dropzone_id uuid NOT NULL REFERENCES {S}.dropzones (id),
            name text NOT NULL,
            size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
            sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{{64}}$'),
            storage_path text NOT NULL,
            status text NOT NULL CHECK (status IN ({STATUSES})),
            status_reason text NOT NULL DEFAULT '',
            duplicate_of uuid REFERENCES {S}.files (id),
            source_schema text NOT NULL DEFAULT '',
            rows_total bigint NOT NULL DEFAULT 0,
            rows_created bigint NOT NULL DEFAULT 0,
            rows_updated bigint NOT NULL DEFAULT 0,
            rows_unchanged bigint NOT NULL DEFAULT 0,
            rows_rejected bigint NOT NULL DEFAULT 0,
            received_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(f"CREATE INDEX files_dropzone_idx ON {S}.files (dropzone_id, id)")
    op.execute(f"CREATE INDEX files_content_idx ON {S}.files (dropzone_id, sha256)")
    enable_account_rls(op, S, "files")
    grant_app(op, S, "files", "SELECT, INSERT, UPDATE")

    create_outbox(op, S)
    create_processed_events(op, S)


def downgrade() -> None:
    for table in ("processed_events", "outbox", "files"):
        op.execute(f"DROP TABLE {S}.{table}")
    op.execute(f"DROP FUNCTION {S}.find_sftp_login(text)")
    op.execute(f"DROP TABLE {S}.sftp_logins")
    op.execute(f"DROP TABLE {S}.dropzones")
