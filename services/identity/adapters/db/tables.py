"""The identity schema's tables as SQLAlchemy Core objects, mirroring migrations/versions."""

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
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


@dataclass(frozen=True)
class IdentityTables:
    metadata: MetaData
    users: Table
    memberships: Table
    roles: Table
    role_grants: Table
    signing_keys: Table
    outbox: Table
    processed_events: Table


def identity_tables(metadata: MetaData) -> IdentityTables:
    """Declare the tables on `metadata` (built with `MetaData(schema=SCHEMA)`)."""
    if not metadata.schema:
        raise ValueError("identity tables need MetaData(schema=...)")
    users = Table(
        "users",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("email", Text, nullable=False),
        Column("display_name", Text, nullable=False, server_default=""),
        Column("password_hash", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="active"),
        *timestamps(),
        Column("deactivated_at", DateTime(timezone=True)),
        Index("users_email_key", func.lower(text("email")), unique=True),
    )
    memberships = Table(
        "memberships",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("user_id", Uuid, ForeignKey(users.c.id), nullable=False, index=True),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
        Index(
            "memberships_account_user_key",
            "account_id",
            "user_id",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    roles = Table(
        "roles",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("name", Text, nullable=False),
        Column("permissions", ARRAY(Text), nullable=False, server_default="{}"),
        Column("preset", Boolean, nullable=False, server_default="false"),
        *timestamps(),
        UniqueConstraint("account_id", "name"),
    )
    role_grants = Table(
        "role_grants",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("user_id", Uuid, ForeignKey(users.c.id), nullable=False, index=True),
        Column("role_id", Uuid, ForeignKey(roles.c.id), nullable=False, index=True),
        Column("scope", Text, nullable=False, server_default="account"),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
        Index(
            "role_grants_grant_key",
            "account_id",
            "user_id",
            "role_id",
            "scope",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    signing_keys = Table(
        "signing_keys",
        metadata,
        Column("kid", Text, primary_key=True),
        Column("private_key_wrapped", LargeBinary, nullable=False),
        Column("public_key", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("retired_at", DateTime(timezone=True)),
    )
    return IdentityTables(
        metadata=metadata,
        users=users,
        memberships=memberships,
        roles=roles,
        role_grants=role_grants,
        signing_keys=signing_keys,
        outbox=outbox_table(metadata),
        processed_events=processed_events_table(metadata),
    )
