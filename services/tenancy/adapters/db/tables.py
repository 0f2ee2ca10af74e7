"""The tenancy schema's tables (SQLAlchemy Core), mirroring migrations/versions."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from services.runtime.db import timestamps
from services.runtime.messaging import processed_events_table
from services.runtime.outbox import outbox_table

SCHEMA = "tenancy"

metadata = MetaData(schema=SCHEMA)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("slug", Text, nullable=False),
    Column("tier", Text, nullable=False, server_default="standard"),
    Column("status", Text, nullable=False, server_default="active"),
    *timestamps(),
    UniqueConstraint("slug", name="accounts_slug_key"),
    CheckConstraint(
        "tier IN ('standard', 'professional', 'enterprise')", name="accounts_tier_check"
    ),
    CheckConstraint(
        "status IN ('active', 'suspended', 'closing', 'closed')", name="accounts_status_check"
    ),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("wrapped_key", LargeBinary),
    *timestamps(),
    Column("destroyed_at", DateTime(timezone=True)),
    UniqueConstraint("account_id", "version", name="data_keys_account_version_key"),
    CheckConstraint("version > 0", name="data_keys_version_check"),
    CheckConstraint(
        "destroyed_at IS NOT NULL OR wrapped_key IS NOT NULL", name="data_keys_live_key_check"
    ),
)

# Paths of ids (`/root/.../self/`) collated "C": a subtree is one index range (migration 0002).
PATH = Text(collation="C")

tenant_groups = Table(
    "tenant_groups",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("parent_id", Uuid),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("path", PATH, nullable=False),
    Column("path_end", PATH, Computed("left(path, -1) || '0'", persisted=True)),
    Column("depth", Integer, nullable=False),
    *timestamps(),
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("account_id", "id", name="tenant_groups_account_id_id_key"),
    UniqueConstraint("account_id", "path", name="tenant_groups_account_path_key"),
    ForeignKeyConstraint(
        ["account_id", "parent_id"],
        ["tenant_groups.account_id", "tenant_groups.id"],
        name="tenant_groups_parent_fkey",
    ),
    CheckConstraint("type IN ('region', 'group', 'site')", name="tenant_groups_type_check"),
    CheckConstraint("depth > 0", name="tenant_groups_depth_check"),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("name", Text, nullable=False),
    Column("group_id", Uuid),
    Column("group_path", PATH),
    *timestamps(),
    Column("deleted_at", DateTime(timezone=True)),
    UniqueConstraint("account_id", "id", name="tenants_account_id_id_key"),
    ForeignKeyConstraint(
        ["account_id", "group_id"],
        ["tenant_groups.account_id", "tenant_groups.id"],
        name="tenants_group_fkey",
    ),
    Index("tenants_group_idx", "account_id", "group_id", "id"),
    Index("tenants_group_path_idx", "account_id", "group_path"),
    Index(
        "tenants_account_name_key",
        "account_id",
        func.lower(text("name")),
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

tenant_mapping_codes = Table(
    "tenant_mapping_codes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("source", Text, nullable=False),
    Column("code", Text, nullable=False),
    *timestamps(),
    Column("deleted_at", DateTime(timezone=True)),
    ForeignKeyConstraint(
        ["account_id", "tenant_id"],
        ["tenants.account_id", "tenants.id"],
        name="tenant_mapping_codes_tenant_fkey",
    ),
    Index(
        "tenant_mapping_codes_source_code_key",
        "account_id",
        "source",
        "code",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

tenant_locations = Table(
    "tenant_locations",
    metadata,
    Column("tenant_id", Uuid, primary_key=True),
    Column("account_id", Uuid, nullable=False),
    Column("address_lines", ARRAY(Text), nullable=False, server_default="{}"),
    Column("city", Text, nullable=False, server_default=""),
    Column("postal_code", Text, nullable=False, server_default=""),
    Column("region", Text, nullable=False, server_default=""),
    Column("country", Text, nullable=False),
    Column("latitude", Double),
    Column("longitude", Double),
    *timestamps(),
    ForeignKeyConstraint(
        ["account_id", "tenant_id"],
        ["tenants.account_id", "tenants.id"],
        name="tenant_locations_tenant_fkey",
    ),
)

outbox = outbox_table(metadata)
processed_events = processed_events_table(metadata)
