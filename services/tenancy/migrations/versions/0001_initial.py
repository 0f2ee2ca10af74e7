"""Accounts, data keys, tenants, tenant mapping codes, outbox and processed events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

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

S = "tenancy"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Callers limited to some tenants see only those; an unset or reset setting means none.
IN_TENANT_SCOPE = (
    "(select current_setting('app.all_tenants', true)) = 'on'"
    " OR {column} = ANY ((select nullif(current_setting('app.tenant_ids', true), ''))::uuid[])"
)


def limit_to_tenant_scope(table: str, column: str) -> None:
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.{table} AS RESTRICTIVE FOR SELECT"
        f" USING ({IN_TENANT_SCOPE.format(column=column)})"
    )


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {S}.accounts ("
        " id uuid PRIMARY KEY,"
        " name text NOT NULL,"
        " slug text NOT NULL CONSTRAINT accounts_slug_key UNIQUE,"
        " tier text NOT NULL DEFAULT 'standard' CONSTRAINT accounts_tier_check"
        "  CHECK (tier IN ('standard', 'professional', 'enterprise')),"
        " status text NOT NULL DEFAULT 'active' CONSTRAINT accounts_status_check"
        "  CHECK (status IN ('active', 'suspended', 'closing', 'closed')),"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    enable_account_rls(op, S, "accounts", column="id")
    # FORCE applies to the owner too: this policy lets only find_account (SECURITY DEFINER,
    # owned by tenancy_owner) look across accounts. The app role never does.
    op.execute(f"CREATE POLICY owner_lookup ON {S}.accounts FOR SELECT TO {S}_owner USING (true)")
    # The slug is immutable: the app role may update every column but it (and the id).
    grant_app(op, S, "accounts", "SELECT, INSERT, UPDATE (name, tier, status, updated_at)")
    op.execute(
        f"CREATE FUNCTION {S}.find_account(ref text) RETURNS SETOF {S}.accounts"
        " LANGUAGE plpgsql STABLE SECURITY DEFINER"
        f" SET search_path = pg_catalog, {S} AS $$"
        " BEGIN"
        f"  IF ref ~ '{UUID_PATTERN}' THEN"
        f"   RETURN QUERY SELECT * FROM {S}.accounts WHERE id = ref::uuid;"
        "  ELSE"
        f"   RETURN QUERY SELECT * FROM {S}.accounts WHERE slug = ref;"
        "  END IF;"
        " END $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.find_account(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.find_account(text) TO {S}_app")

    op.execute(
        f"CREATE TABLE {S}.data_keys ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " version integer NOT NULL CONSTRAINT data_keys_version_check CHECK (version > 0),"
        " wrapped_key bytea,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " destroyed_at timestamptz,"
        " CONSTRAINT data_keys_account_version_key UNIQUE (account_id, version),"
        " CONSTRAINT data_keys_live_key_check"
        "  CHECK (destroyed_at IS NOT NULL OR wrapped_key IS NOT NULL))"
    )
    enable_account_rls(op, S, "data_keys")
    grant_app(op, S, "data_keys", "SELECT, INSERT, UPDATE (wrapped_key, updated_at, destroyed_at)")

    op.execute(
        f"CREATE TABLE {S}.tenants ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " name text NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz,"
        " CONSTRAINT tenants_account_id_id_key UNIQUE (account_id, id))"
    )
    op.execute(
        f"CREATE UNIQUE INDEX tenants_account_name_key ON {S}.tenants (account_id, lower(name))"
        " WHERE deleted_at IS NULL"
    )
    enable_account_rls(op, S, "tenants")
    limit_to_tenant_scope("tenants", "id")
    grant_app(op, S, "tenants", "SELECT, INSERT, UPDATE (name, updated_at, deleted_at)")

    op.execute(
        f"CREATE TABLE {S}.tenant_mapping_codes ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " tenant_id uuid NOT NULL,"
        " source text NOT NULL,"
        " code text NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz,"
        " CONSTRAINT tenant_mapping_codes_tenant_fkey FOREIGN KEY (account_id, tenant_id)"
        f"  REFERENCES {S}.tenants (account_id, id))"
    )
    op.execute(
        "CREATE UNIQUE INDEX tenant_mapping_codes_source_code_key"
        f" ON {S}.tenant_mapping_codes (account_id, source, code) WHERE deleted_at IS NULL"
    )
    enable_account_rls(op, S, "tenant_mapping_codes")
    limit_to_tenant_scope("tenant_mapping_codes", "tenant_id")
    grant_app(op, S, "tenant_mapping_codes", "SELECT, INSERT, UPDATE (updated_at, deleted_at)")

    create_outbox(op, S)
    create_processed_events(op, S)


def downgrade() -> None:
    for table in ("processed_events", "outbox", "tenant_mapping_codes", "tenants", "data_keys"):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.find_account(text)")
    op.execute(f"DROP TABLE IF EXISTS {S}.accounts")
