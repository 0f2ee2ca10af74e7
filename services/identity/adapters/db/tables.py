"""The identity schema's tables as SQLAlchemy Core objects, mirroring migrations/versions."""

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
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
    account_authz: Table
    authz_leases: Table
    service_accounts: Table
    api_keys: Table
    refresh_tokens: Table
    login_throttle: Table
    domains: Table
    domain_rules: Table
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
        Column("deactivated_at", DateTime(timezone=True)),
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
        Column("based_on", Text),
        Column("description", Text, nullable=False, server_default=""),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
        Index(
            "roles_account_name_key",
            "account_id",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    role_grants = Table(
        "role_grants",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        # A user or a service account (principal_kind); no foreign key for that reason.
        Column("principal_id", Uuid, nullable=False, index=True),
        Column("principal_kind", Text, nullable=False, server_default="user"),
        Column("role_id", Uuid, ForeignKey(roles.c.id), nullable=False, index=True),
        Column("scope", Text, nullable=False, server_default="account"),
        Column("scope_id", Uuid),
        Column("domain_rule_id", Uuid),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
        Index(
            "role_grants_grant_key",
            "account_id",
            "principal_id",
            "role_id",
            "scope",
            "scope_id",
            "domain_rule_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
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
    account_authz = Table(
        "account_authz",
        metadata,
        Column("account_id", Uuid, primary_key=True),
        Column("version", BigInteger, nullable=False, server_default="0"),
        *timestamps(),
    )
    authz_leases = Table(
        "authz_leases",
        metadata,
        Column("lease_id", Uuid, primary_key=True),
        Column("fence_subject", Text, nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    service_accounts = Table(
        "service_accounts",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("name", Text, nullable=False),
        Column("description", Text, nullable=False, server_default=""),
        Column("created_by", Text, nullable=False, server_default=""),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
    )
    api_keys = Table(
        "api_keys",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("owner_id", Uuid, nullable=False),
        Column("owner_kind", Text, nullable=False),
        Column("name", Text, nullable=False, server_default=""),
        Column("prefix", Text, nullable=False, unique=True),
        Column("secret_hash", LargeBinary, nullable=False),
        Column("permissions", ARRAY(Text), nullable=False, server_default="{}"),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("last_used_at", DateTime(timezone=True)),
        Column("revoked_at", DateTime(timezone=True)),
        Column("created_by", Text, nullable=False, server_default=""),
        *timestamps(),
    )
    refresh_tokens = Table(
        "refresh_tokens",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("family_id", Uuid, nullable=False, index=True),
        Column("user_id", Uuid, ForeignKey(users.c.id), nullable=False, index=True),
        # The account of the `acc` claim the token mints (not an owner: no RLS here).
        Column("claim_account_id", Uuid),
        Column("token_hash", LargeBinary, nullable=False, unique=True),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        Column("used_at", DateTime(timezone=True)),
        Column("revoked_at", DateTime(timezone=True)),
        *timestamps(),
    )
    login_throttle = Table(
        "login_throttle",
        metadata,
        Column("email", Text, primary_key=True),
        Column("failures", Integer, nullable=False, server_default="0"),
        Column("lockouts", Integer, nullable=False, server_default="0"),
        Column("locked_until", DateTime(timezone=True)),
        *timestamps(),
    )
    domains = Table(
        "domains",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("domain", Text, nullable=False),
        Column("verification_token", Text, nullable=False),
        Column("verified_at", DateTime(timezone=True)),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
    )
    domain_rules = Table(
        "domain_rules",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("account_id", Uuid, nullable=False, index=True),
        Column("domain_id", Uuid, ForeignKey(domains.c.id), nullable=False),
        Column("role_id", Uuid, ForeignKey(roles.c.id), nullable=False),
        Column("scope_type", Text, nullable=False),
        Column("scope_id", Uuid),
        *timestamps(),
        Column("deleted_at", DateTime(timezone=True)),
    )
    return IdentityTables(
        metadata=metadata,
        users=users,
        memberships=memberships,
        roles=roles,
        role_grants=role_grants,
        signing_keys=signing_keys,
        account_authz=account_authz,
        authz_leases=authz_leases,
        service_accounts=service_accounts,
        api_keys=api_keys,
        refresh_tokens=refresh_tokens,
        login_throttle=login_throttle,
        domains=domains,
        domain_rules=domain_rules,
        outbox=outbox_table(metadata),
        processed_events=processed_events_table(metadata),
    )
