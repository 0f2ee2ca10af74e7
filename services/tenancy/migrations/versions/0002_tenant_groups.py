"""Tenant groups (a tree stored as materialised paths), tenants placed in groups, locations.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

A group's `path` is the ids from its root down to itself, `/id1/id2/id3/`, collated "C" so a
subtree is one index range: `path >= P AND path < path_end` (`path_end` is P with its last
'/' turned into '0', the next character).
Tenants carry their group's path in `group_path`, so "every tenant under G" is one range scan
of the tenants index too, and a move rewrites both with two set-based UPDATEs.
"""

from collections.abc import Sequence

from alembic import op

from services.runtime.migrations import enable_account_rls, grant_app

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "tenancy"
NO_PARENT = "'00000000-0000-0000-0000-000000000000'::uuid"
ALL_TENANTS = "(select current_setting('app.all_tenants', true)) = 'on'"
SCOPED_TENANTS = "(select nullif(current_setting('app.tenant_ids', true), ''))::uuid[]"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {S}.tenant_groups ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " parent_id uuid,"
        " type text NOT NULL CONSTRAINT tenant_groups_type_check"
        "  CHECK (type IN ('region', 'group', 'site')),"
        " name text NOT NULL,"
        ' path text COLLATE "C" NOT NULL CONSTRAINT tenant_groups_path_check'
        "  CHECK (path LIKE '/%/'),"
        # The bound of the subtree's range as a plain column: a join on it stays an index range
        # under row-level security (where `left(path, -1) || '0'`, not leakproof, would not).
        " path_end text COLLATE \"C\" GENERATED ALWAYS AS (left(path, -1) || '0') STORED,"
        " depth integer NOT NULL CONSTRAINT tenant_groups_depth_check CHECK (depth > 0),"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz,"
        " CONSTRAINT tenant_groups_account_id_id_key UNIQUE (account_id, id),"
        " CONSTRAINT tenant_groups_account_path_key UNIQUE (account_id, path),"
        " CONSTRAINT tenant_groups_parent_fkey FOREIGN KEY (account_id, parent_id)"
        f"  REFERENCES {S}.tenant_groups (account_id, id))"
    )
    op.execute(
        "CREATE UNIQUE INDEX tenant_groups_sibling_name_key ON"
        f" {S}.tenant_groups (account_id, coalesce(parent_id, {NO_PARENT}), lower(name))"
        " WHERE deleted_at IS NULL"
    )
    op.execute(
        f"CREATE INDEX tenant_groups_children_idx ON {S}.tenant_groups (account_id, parent_id, id)"
        " WHERE deleted_at IS NULL"
    )
    enable_account_rls(op, S, "tenant_groups")
    grant_app(
        op,
        S,
        "tenant_groups",
        "SELECT, INSERT, UPDATE (name, parent_id, path, depth, updated_at, deleted_at)",
    )

    op.execute(
        f"ALTER TABLE {S}.tenants ADD COLUMN group_id uuid,"
        ' ADD COLUMN group_path text COLLATE "C",'
        " ADD CONSTRAINT tenants_group_fkey FOREIGN KEY (account_id, group_id)"
        f"  REFERENCES {S}.tenant_groups (account_id, id),"
        " ADD CONSTRAINT tenants_group_path_check"
        "  CHECK ((group_id IS NULL) = (group_path IS NULL))"
    )
    op.execute(f"CREATE INDEX tenants_group_idx ON {S}.tenants (account_id, group_id, id)")
    op.execute(f"CREATE INDEX tenants_group_path_idx ON {S}.tenants (account_id, group_path)")
    op.execute(f"GRANT UPDATE (group_id, group_path) ON {S}.tenants TO {S}_app")
    # A caller limited to some tenants sees the groups on the paths down to those tenants: the
    # groups whose subtree holds one of them. (The tenants read here are themselves limited.)
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.tenant_groups AS RESTRICTIVE FOR SELECT USING ("
        f" {ALL_TENANTS} OR EXISTS (SELECT 1 FROM {S}.tenants t"
        "  WHERE t.account_id = tenant_groups.account_id"
        f"  AND t.id = ANY ({SCOPED_TENANTS}) AND t.deleted_at IS NULL"
        "  AND t.group_path >= tenant_groups.path"
        "  AND t.group_path < tenant_groups.path_end))"
    )

    op.execute(
        f"CREATE TABLE {S}.tenant_locations ("
        " tenant_id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " address_lines text[] NOT NULL DEFAULT '{}',"
        " city text NOT NULL DEFAULT '',"
        " postal_code text NOT NULL DEFAULT '',"
        " region text NOT NULL DEFAULT '',"
        " country text NOT NULL CONSTRAINT tenant_locations_country_check"
        "  CHECK (country ~ '^[A-Z]{2}$'),"
        " latitude double precision CONSTRAINT tenant_locations_latitude_check"
        "  CHECK (latitude BETWEEN -90 AND 90),"
        " longitude double precision CONSTRAINT tenant_locations_longitude_check"
        "  CHECK (longitude BETWEEN -180 AND 180),"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " CONSTRAINT tenant_locations_position_check"
        "  CHECK ((latitude IS NULL) = (longitude IS NULL)),"
        " CONSTRAINT tenant_locations_tenant_fkey FOREIGN KEY (account_id, tenant_id)"
        f"  REFERENCES {S}.tenants (account_id, id))"
    )
    enable_account_rls(op, S, "tenant_locations")
    # Callers limited to some tenants read and write only those tenants' locations.
    scope = f"{ALL_TENANTS} OR tenant_id = ANY ({SCOPED_TENANTS})"
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.tenant_locations AS RESTRICTIVE"
        f" USING ({scope}) WITH CHECK ({scope})"
    )
    grant_app(op, S, "tenant_locations", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {S}.tenant_locations")
    op.execute(
        f"ALTER TABLE {S}.tenants DROP COLUMN IF EXISTS group_path, DROP COLUMN IF EXISTS group_id"
    )
    op.execute(f"DROP TABLE IF EXISTS {S}.tenant_groups")
