"""Mapping versions, the mapping version of each load, reject details, blind index, reference data.

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

S = "canonical"
TENANT_SCOPE = (
    "(select current_setting('app.all_tenants', true)) = 'on'"
    " OR tenant_id = ANY ((select nullif(current_setting('app.tenant_ids', true), ''))::uuid[])"
)


def upgrade() -> None:
    # Every version of a source schema's definition; source_schemas keeps the current one
    # (`version`) and the number of the newest (`latest_version`).
    op.execute(
        f"CREATE TABLE {S}.source_schema_versions ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " source_schema_id uuid NOT NULL,"
        " version integer NOT NULL,"
        " definition jsonb NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT source_schema_versions_key UNIQUE (account_id, source_schema_id, version))"
    )
    enable_account_rls(op, S, "source_schema_versions")
    grant_app(op, S, "source_schema_versions", "SELECT, INSERT")
    op.execute(f"ALTER TABLE {S}.source_schemas ADD COLUMN latest_version integer")
    op.execute(
        f"INSERT INTO {S}.source_schema_versions (id, account_id, source_schema_id, version,"
        " definition, created_at, updated_at)"
        " SELECT gen_random_uuid(), account_id, id, version, definition, created_at, updated_at"
        f" FROM {S}.source_schemas"
    )
    op.execute(f"UPDATE {S}.source_schemas SET latest_version = version")
    op.execute(f"ALTER TABLE {S}.source_schemas ALTER COLUMN latest_version SET DEFAULT 1")
    op.execute(f"ALTER TABLE {S}.source_schemas ALTER COLUMN latest_version SET NOT NULL")

    # The mapping version a load used (filled by the loader).
    op.execute(f"ALTER TABLE {S}.loads ADD COLUMN source_schema_version integer")

    # Per reason the source column it is about ('' for the row as a whole), and the row's
    # original values of its non-sensitive columns, for the rejects file.
    op.execute(
        f"ALTER TABLE {S}.rejects"
        " ADD COLUMN reason_columns text[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN value_columns text[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN \"values\" text[] NOT NULL DEFAULT '{}'"
    )

    # Keyed blind index of searchable fields: HMAC-SHA256 digests, never the plaintext.
    op.execute(
        f"CREATE TABLE {S}.record_index ("
        " account_id uuid NOT NULL,"
        " tenant_id uuid NOT NULL,"
        " schema text NOT NULL,"
        " dedupe_key text NOT NULL,"
        " field text NOT NULL,"
        " digest text NOT NULL,"
        " key_version integer NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (account_id, dedupe_key, field))"
    )
    op.execute(
        f"CREATE INDEX record_index_lookup ON {S}.record_index (account_id, schema, field, digest)"
    )
    enable_account_rls(op, S, "record_index")
    grant_app(op, S, "record_index")
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.record_index AS RESTRICTIVE USING ({TENANT_SCOPE})"
    )

    # Global reference data (no account, no RLS): the app role reads it and loads fixtures only
    # through load_reference (SECURITY DEFINER, owned by the owner role).
    op.execute(
        f"CREATE TABLE {S}.reference_data ("
        " id uuid PRIMARY KEY,"
        " kind text NOT NULL,"
        " natural_key text NOT NULL,"
        " data jsonb NOT NULL,"
        " fixture_version integer NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT reference_data_kind_natural_key UNIQUE (kind, natural_key))"
    )
    grant_app(op, S, "reference_data", "SELECT")
    op.execute(
        f"CREATE FUNCTION {S}.load_reference(items jsonb)"
        " RETURNS TABLE (created bigint, updated bigint, unchanged bigint)"
        " LANGUAGE plpgsql VOLATILE SECURITY DEFINER"
        f" SET search_path = pg_catalog, {S} AS $$"
        " DECLARE total bigint := jsonb_array_length(items);"
        " BEGIN"
        "  RETURN QUERY WITH incoming AS ("
        "    SELECT (i->>'id')::uuid AS id, i->>'kind' AS kind, i->>'natural_key' AS natural_key,"
        "     i->'data' AS data, (i->>'fixture_version')::integer AS fixture_version"
        "    FROM jsonb_array_elements(items) AS i),"
        "   written AS ("
        "    INSERT INTO reference_data AS r (id, kind, natural_key, data, fixture_version)"
        "    SELECT id, kind, natural_key, data, fixture_version FROM incoming"
        "    ON CONFLICT (kind, natural_key) DO UPDATE"
        "     SET data = excluded.data, fixture_version = excluded.fixture_version,"
        "      updated_at = now()"
        "     WHERE r.data IS DISTINCT FROM excluded.data"
        "      OR r.fixture_version IS DISTINCT FROM excluded.fixture_version"
        "    RETURNING (xmax = 0) AS inserted)"
        "   SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),"
        "    total - count(*) FROM written;"
        " END $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.load_reference(jsonb) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.load_reference(jsonb) TO {S}_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {S}.load_reference(jsonb)")
    for table in ("reference_data", "record_index", "source_schema_versions"):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")
    op.execute(
        f"ALTER TABLE {S}.rejects DROP COLUMN reason_columns, DROP COLUMN value_columns,"
        ' DROP COLUMN "values"'
    )
    op.execute(f"ALTER TABLE {S}.loads DROP COLUMN source_schema_version")
    op.execute(f"ALTER TABLE {S}.source_schemas DROP COLUMN latest_version")
