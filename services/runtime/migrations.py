"""Schema ownership and Alembic: each service migrates its own schema as its owner role.

Roles per service schema `s`: `s_owner` owns the schema and runs migrations; `s_app` serves
and has only the grants its migrations give it. Neither is a superuser or has BYPASSRLS.
"""

import logging
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from psycopg import sql

from services.runtime.config import RuntimeConfig, libpq_url
from services.runtime.db import account_policy_sql

log = logging.getLogger(__name__)


def provision_roles(admin_url: str, schema: str, password: str | None = None) -> None:
    """Create the schema's owner and app roles and the schema, if missing (idempotent)."""
    owner, app = f"{schema}_owner", f"{schema}_app"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        is_superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        is_superuser = is_superuser.fetchone()[0]
        for role in (owner, app):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE").format(
                        sql.Identifier(role)
                    )
                )
            if password:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            if not is_superuser:
                # PostgreSQL 16+: a CREATEROLE admin must hold the role to hand it a schema.
                conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
        database = conn.info.dbname
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
                sql.Identifier(database), sql.Identifier(owner), sql.Identifier(app)
            )
        )
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(schema), sql.Identifier(app)
            )
        )


def alembic_config(schema: str, migrations_dir: Path, owner_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", owner_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def migrate(config: RuntimeConfig, schema: str, migrations_dir: Path) -> None:
    """Provision roles with the admin URL, then upgrade the schema to head as its owner."""
    provision_roles(config.database_url, schema, config.database_role_password)
    command.upgrade(alembic_config(schema, migrations_dir, config.owner_url(schema)), "head")
    log.info("migrated", extra={"fields": {"schema": schema}})


def run_env() -> None:
    """The body of every service's `migrations/env.py` (online mode only)."""
    from alembic import context as alembic_context
    from sqlalchemy import create_engine, pool

    config = alembic_context.config
    schema = config.attributes["schema"]
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        alembic_context.configure(
            connection=connection, version_table_schema=schema, transaction_per_migration=True
        )
        with alembic_context.begin_transaction():
            alembic_context.run_migrations()


# Helpers for migration scripts, so every service creates the shared tables the same way.


def grant_app(
    op: Operations, schema: str, table: str, privileges: str = "SELECT, INSERT, UPDATE, DELETE"
) -> None:
    op.execute(f"GRANT {privileges} ON {schema}.{table} TO {schema}_app")


def enable_account_rls(op: Operations, schema: str, table: str, column: str = "account_id") -> None:
    """ENABLE + FORCE row-level security limited to the current account, and index the column."""
    for statement in account_policy_sql(schema, table, column):
        op.execute(statement)
    op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {schema}.{table} ({column})")


IN_TENANT_SCOPE = (
    "(select current_setting('app.all_tenants', true)) = 'on'"
    " OR {column} = ANY ((select nullif(current_setting('app.tenant_ids', true), ''))::uuid[])"
)


def limit_to_tenant_scope(
    op: Operations, schema: str, table: str, column: str = "tenant_id"
) -> None:
    """A RESTRICTIVE read policy: only rows of the caller's visible tenants (or all of them)."""
    op.execute(
        f"CREATE POLICY tenant_scope ON {schema}.{table} AS RESTRICTIVE FOR SELECT"
        f" USING ({IN_TENANT_SCOPE.format(column=column)})"
    )
    op.execute(f"CREATE INDEX IF NOT EXISTS {table}_{column}_idx ON {schema}.{table} ({column})")


def create_outbox(op: Operations, schema: str) -> None:
    op.execute(
        f"CREATE TABLE {schema}.outbox ("
        " id uuid PRIMARY KEY, subject text NOT NULL, envelope bytea NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz)"
    )
    op.execute(
        f"CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE published_at IS NULL"
    )
    grant_app(op, schema, "outbox", "SELECT, INSERT, UPDATE")


def create_processed_events(op: Operations, schema: str) -> None:
    op.execute(
        f"CREATE TABLE {schema}.processed_events ("
        " consumer text NOT NULL, event_id uuid NOT NULL,"
        " processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id))"
    )
    grant_app(op, schema, "processed_events", "SELECT, INSERT")
