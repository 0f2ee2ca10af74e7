"""What each drop zone holds, kept on the zone: stored_files and stored_bytes.

Checking a zone's quota used to count and sum all its files at every upload (a cost that grew
with the zone). A trigger on files now keeps the two figures on the zone's row, in the same
statement as the file's insert (or delete), so a commit that locked the row reads them exactly.
The trigger's function runs as the schema's owner, so the figures move even when the caller's
tenant scope would hide the zone; the account policy still limits it to the caller's account.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "ingestion"
OWNER = f"{S}_owner"


def upgrade() -> None:
    op.execute(
        f"ALTER TABLE {S}.dropzones"
        " ADD COLUMN stored_files bigint NOT NULL DEFAULT 0 CHECK (stored_files >= 0),"
        " ADD COLUMN stored_bytes bigint NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0)"
    )
    # Row-level security is forced on the owner too; for this one backfill of every account's
    # figures the owner reads past it, inside the migration's transaction only.
    op.execute(f"ALTER TABLE {S}.dropzones NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.files NO FORCE ROW LEVEL SECURITY")
    op.execute(
        f"""
        UPDATE {S}.dropzones AS z
        SET stored_files = u.files, stored_bytes = u.bytes
        FROM (
            SELECT dropzone_id, count(*) AS files, coalesce(sum(size_bytes), 0) AS bytes
            FROM {S}.files GROUP BY dropzone_id
        ) AS u
        WHERE u.dropzone_id = z.id
        """
    )
    op.execute(f"ALTER TABLE {S}.files FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {S}.dropzones FORCE ROW LEVEL SECURITY")
    op.execute(
        f"""
        CREATE FUNCTION {S}.count_stored_file()
        RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, {S}
        AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE {S}.dropzones
                SET stored_files = stored_files + 1, stored_bytes = stored_bytes + NEW.size_bytes
                WHERE id = NEW.dropzone_id;
                RETURN NEW;
            END IF;
            UPDATE {S}.dropzones
            SET stored_files = stored_files - 1, stored_bytes = stored_bytes - OLD.size_bytes
            WHERE id = OLD.dropzone_id;
            RETURN OLD;
        END
        $$
        """
    )
    op.execute(f"ALTER FUNCTION {S}.count_stored_file() OWNER TO {OWNER}")
    op.execute(f"REVOKE ALL ON FUNCTION {S}.count_stored_file() FROM PUBLIC")
    op.execute(
        f"CREATE TRIGGER files_count_stored AFTER INSERT OR DELETE ON {S}.files"
        f" FOR EACH ROW EXECUTE FUNCTION {S}.count_stored_file()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER files_count_stored ON {S}.files")
    op.execute(f"DROP FUNCTION {S}.count_stored_file()")
    op.execute(f"ALTER TABLE {S}.dropzones DROP COLUMN stored_files, DROP COLUMN stored_bytes")
