"""Production SFTP: quotas, schedules, keys, lockouts, retired usernames, tiers, documents.

- dropzones: byte and file quotas, an expected-arrival schedule and the last window flagged
  late; a RESTRICTIVE tenant-scope policy (a caller limited to some tenants sees only the
  zones whose tenants overlap theirs), which files inherit through their zone.
- sftp_logins: lockout state (failures in the current window, locked until, lockouts in a row).
- sftp_login_keys: OpenSSH public keys of a login, by SHA-256 fingerprint.
- retired_usernames: usernames of hard-deleted logins, never issued again.
- address_lockouts: failed sign-ins per source address. Platform security state (like a
  firewall's), not customer data: no account_id and no RLS; queries filter explicitly.
- account_tiers: each account's tier, learned from tenancy's account events.
- zone_documents: receipts and reject files written back to a zone for its logins to download.
- files: who uploaded them (login_id) and when their load completed (completed_at).

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from collections.abc import Sequence

from alembic import op

from services.runtime.migrations import enable_account_rls, grant_app

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "ingestion"
OWNER = f"{S}_owner"
APP = f"{S}_app"
ALL_TENANTS = "(select current_setting('app.all_tenants', true)) = 'on'"
VISIBLE_TENANTS = "(select nullif(current_setting('app.tenant_ids', true), ''))::uuid[]"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE {S}.dropzones
            ADD COLUMN quota_bytes bigint CHECK (quota_bytes > 0),
            ADD COLUMN quota_files bigint CHECK (quota_files > 0),
            ADD COLUMN expected_by time,
            ADD COLUMN expected_timezone text,
            ADD COLUMN expected_since timestamptz,
            ADD COLUMN last_late_deadline timestamptz,
            ADD CONSTRAINT dropzones_schedule_check
                CHECK ((expected_by IS NULL) = (expected_timezone IS NULL))
        """
    )
    op.execute(f"CREATE INDEX dropzones_tenant_ids_idx ON {S}.dropzones USING gin (tenant_ids)")
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.dropzones AS RESTRICTIVE TO {APP}"
        f" USING ({ALL_TENANTS} OR tenant_ids && {VISIBLE_TENANTS})"
    )
    # The lateness loop lists scheduled zones of every account through the function below.
    op.execute(f"CREATE POLICY schedule_scan ON {S}.dropzones FOR SELECT TO {OWNER} USING (true)")
    op.execute(
        f"""
        CREATE FUNCTION {S}.scheduled_dropzones()
        RETURNS TABLE (id uuid, account_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, {S}
        AS $$
            SELECT z.id, z.account_id FROM {S}.dropzones AS z
            WHERE z.expected_by IS NOT NULL AND z.deleted_at IS NULL
        $$
        """
    )
    op.execute(f"ALTER FUNCTION {S}.scheduled_dropzones() OWNER TO {OWNER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.scheduled_dropzones() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.scheduled_dropzones() TO {APP}")

    op.execute(
        f"""
        ALTER TABLE {S}.files
            ADD COLUMN login_id uuid,
            ADD COLUMN completed_at timestamptz
        """
    )
    op.execute(f"CREATE INDEX files_dropzone_status_idx ON {S}.files (dropzone_id, status)")
    # A file is visible only where its drop zone is (the subquery runs under the zone's policy).
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.files AS RESTRICTIVE TO {APP}"
        f" USING ({ALL_TENANTS} OR EXISTS ("
        f"SELECT 1 FROM {S}.dropzones AS z WHERE z.id = files.dropzone_id))"
    )

    op.execute(
        f"""
        ALTER TABLE {S}.sftp_logins
            ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0,
            ADD COLUMN failures_since timestamptz,
            ADD COLUMN locked_until timestamptz,
            ADD COLUMN lockouts integer NOT NULL DEFAULT 0
        """
    )
    grant_app(op, S, "sftp_logins", "DELETE")

    op.execute(
        f"""
        CREATE TABLE {S}.sftp_login_keys (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            login_id uuid NOT NULL REFERENCES {S}.sftp_logins (id) ON DELETE CASCADE,
            algorithm text NOT NULL,
            fingerprint text NOT NULL,
            public_key text NOT NULL,
            comment text NOT NULL DEFAULT '',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        f"CREATE UNIQUE INDEX sftp_login_keys_fingerprint_key"
        f" ON {S}.sftp_login_keys (login_id, fingerprint)"
    )
    enable_account_rls(op, S, "sftp_login_keys")
    grant_app(op, S, "sftp_login_keys", "SELECT, INSERT, DELETE")
    op.execute(
        f"CREATE POLICY key_lookup ON {S}.sftp_login_keys FOR SELECT TO {OWNER} USING (true)"
    )
    op.execute(
        f"""
        CREATE FUNCTION {S}.find_sftp_login_key(p_username text, p_fingerprint text)
        RETURNS TABLE (login_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, {S}
        AS $$
            SELECT k.login_id FROM {S}.sftp_login_keys AS k
            JOIN {S}.sftp_logins AS l ON l.id = k.login_id
            WHERE lower(l.username) = lower(p_username) AND k.fingerprint = p_fingerprint
        $$
        """
    )
    op.execute(f"ALTER FUNCTION {S}.find_sftp_login_key(text, text) OWNER TO {OWNER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.find_sftp_login_key(text, text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.find_sftp_login_key(text, text) TO {APP}")

    op.execute(
        f"""
        CREATE TABLE {S}.retired_usernames (
            username text PRIMARY KEY,
            account_id uuid NOT NULL,
            login_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    enable_account_rls(op, S, "retired_usernames")
    grant_app(op, S, "retired_usernames", "SELECT, INSERT")
    op.execute(
        f"CREATE POLICY retired_lookup ON {S}.retired_usernames FOR SELECT TO {OWNER} USING (true)"
    )
    op.execute(
        f"""
        CREATE FUNCTION {S}.username_is_retired(p_username text)
        RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, {S}
        AS $$
            SELECT EXISTS (
                SELECT 1 FROM {S}.retired_usernames WHERE username = lower(p_username)
            )
        $$
        """
    )
    op.execute(f"ALTER FUNCTION {S}.username_is_retired(text) OWNER TO {OWNER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.username_is_retired(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.username_is_retired(text) TO {APP}")

    op.execute(
        f"""
        CREATE TABLE {S}.address_lockouts (
            address text PRIMARY KEY,
            failed_attempts integer NOT NULL DEFAULT 0,
            failures_since timestamptz,
            locked_until timestamptz,
            lockouts integer NOT NULL DEFAULT 0,
            targeted_accounts uuid[] NOT NULL DEFAULT '{{}}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        f"CREATE INDEX address_lockouts_locked_idx ON {S}.address_lockouts (locked_until)"
        " WHERE locked_until IS NOT NULL"
    )
    grant_app(op, S, "address_lockouts", "SELECT, INSERT, UPDATE, DELETE")

    op.execute(
        f"""
        CREATE TABLE {S}.account_tiers (
            account_id uuid PRIMARY KEY,
            tier text NOT NULL CHECK (tier IN ('standard', 'professional', 'enterprise')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    enable_account_rls(op, S, "account_tiers")
    grant_app(op, S, "account_tiers", "SELECT, INSERT, UPDATE")

    op.execute(
        f"""
        CREATE TABLE {S}.zone_documents (
            id uuid PRIMARY KEY,
            account_id uuid NOT NULL,
            dropzone_id uuid NOT NULL REFERENCES {S}.dropzones (id),
            file_id uuid NOT NULL REFERENCES {S}.files (id),
            folder text NOT NULL CHECK (folder IN ('receipts', 'rejects')),
            name text NOT NULL,
            size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
            storage_path text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        f"CREATE INDEX zone_documents_folder_idx ON {S}.zone_documents (dropzone_id, folder, name)"
    )
    enable_account_rls(op, S, "zone_documents")
    grant_app(op, S, "zone_documents", "SELECT, INSERT")


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.zone_documents")
    op.execute(f"DROP TABLE {S}.account_tiers")
    op.execute(f"DROP TABLE {S}.address_lockouts")
    op.execute(f"DROP FUNCTION {S}.username_is_retired(text)")
    op.execute(f"DROP TABLE {S}.retired_usernames")
    op.execute(f"DROP FUNCTION {S}.find_sftp_login_key(text, text)")
    op.execute(f"DROP TABLE {S}.sftp_login_keys")
    op.execute(f"REVOKE DELETE ON {S}.sftp_logins FROM {APP}")
    op.execute(
        f"ALTER TABLE {S}.sftp_logins DROP COLUMN failed_attempts, DROP COLUMN failures_since,"
        " DROP COLUMN locked_until, DROP COLUMN lockouts"
    )
    op.execute(f"DROP POLICY tenant_scope ON {S}.files")
    op.execute(f"DROP INDEX {S}.files_dropzone_status_idx")
    op.execute(f"ALTER TABLE {S}.files DROP COLUMN login_id, DROP COLUMN completed_at")
    op.execute(f"DROP FUNCTION {S}.scheduled_dropzones()")
    op.execute(f"DROP POLICY schedule_scan ON {S}.dropzones")
    op.execute(f"DROP POLICY tenant_scope ON {S}.dropzones")
    op.execute(f"DROP INDEX {S}.dropzones_tenant_ids_idx")
    op.execute(
        f"ALTER TABLE {S}.dropzones DROP CONSTRAINT dropzones_schedule_check,"
        " DROP COLUMN quota_bytes, DROP COLUMN quota_files, DROP COLUMN expected_by,"
        " DROP COLUMN expected_timezone, DROP COLUMN expected_since,"
        " DROP COLUMN last_late_deadline"
    )
