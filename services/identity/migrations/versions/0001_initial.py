"""Users, memberships, roles, role grants, signing keys, outbox and processed events.

Revision ID: 0001
Revises:
"""

from alembic import op

from services.runtime.migrations import (
    create_outbox,
    create_processed_events,
    enable_account_rls,
    grant_app,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    # Users are global principals: the email is the username, unique across the whole
    # platform, and one user may belong to several accounts through memberships. So this
    # table has no account_id and no row-level security; an account reaches its users only
    # through its own memberships (which have both).
    op.execute(
        f"CREATE TABLE {S}.users ("
        " id uuid PRIMARY KEY,"
        " email text NOT NULL,"
        " display_name text NOT NULL DEFAULT '',"
        " password_hash text NOT NULL,"
        " status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deactivated')),"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deactivated_at timestamptz)"
    )
    op.execute(f"CREATE UNIQUE INDEX users_email_key ON {S}.users (lower(email))")
    grant_app(op, S, "users", "SELECT, INSERT, UPDATE")

    op.execute(
        f"CREATE TABLE {S}.memberships ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        f" user_id uuid NOT NULL REFERENCES {S}.users (id),"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX memberships_account_user_key ON {S}.memberships"
        " (account_id, user_id) WHERE deleted_at IS NULL"
    )
    op.execute(f"CREATE INDEX memberships_user_id_idx ON {S}.memberships (user_id)")
    enable_account_rls(op, S, "memberships")
    # Only accounts_of_user (SECURITY DEFINER, owned by identity_owner) reads across
    # accounts: FORCE applies RLS to the owner too, so the owner needs its own policy.
    op.execute(
        f"CREATE POLICY owner_lookup ON {S}.memberships FOR SELECT TO {S}_owner USING (true)"
    )
    grant_app(op, S, "memberships", "SELECT, INSERT, UPDATE")
    op.execute(
        f"CREATE FUNCTION {S}.accounts_of_user(p_user_id uuid) RETURNS SETOF uuid"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT account_id FROM {S}.memberships"
        " WHERE user_id = p_user_id AND deleted_at IS NULL ORDER BY account_id $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.accounts_of_user(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.accounts_of_user(uuid) TO {S}_app")

    op.execute(
        f"CREATE TABLE {S}.roles ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " name text NOT NULL,"
        " permissions text[] NOT NULL DEFAULT '{}',"
        " preset boolean NOT NULL DEFAULT false,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " UNIQUE (account_id, name))"
    )
    enable_account_rls(op, S, "roles")
    grant_app(op, S, "roles", "SELECT, INSERT, UPDATE")

    # scope is 'account' for now; tenant-group and tenant scopes will add a scope_id.
    op.execute(
        f"CREATE TABLE {S}.role_grants ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        f" user_id uuid NOT NULL REFERENCES {S}.users (id),"
        f" role_id uuid NOT NULL REFERENCES {S}.roles (id),"
        " scope text NOT NULL DEFAULT 'account',"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX role_grants_grant_key ON {S}.role_grants"
        " (account_id, user_id, role_id, scope) WHERE deleted_at IS NULL"
    )
    op.execute(f"CREATE INDEX role_grants_user_id_idx ON {S}.role_grants (user_id)")
    op.execute(f"CREATE INDEX role_grants_role_id_idx ON {S}.role_grants (role_id)")
    enable_account_rls(op, S, "role_grants")
    grant_app(op, S, "role_grants", "SELECT, INSERT, UPDATE")

    # Platform keys signing users' access tokens: no account, so no row-level security.
    # The private key is stored only wrapped by the key-encryption key.
    op.execute(
        f"CREATE TABLE {S}.signing_keys ("
        " kid text PRIMARY KEY,"
        " private_key_wrapped bytea NOT NULL,"
        " public_key bytea NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " retired_at timestamptz)"
    )
    # At most one active key, whatever replicas race to create one.
    op.execute(
        f"CREATE UNIQUE INDEX signing_keys_one_active ON {S}.signing_keys"
        " ((retired_at IS NULL)) WHERE retired_at IS NULL"
    )
    grant_app(op, S, "signing_keys", "SELECT, INSERT, UPDATE")

    create_outbox(op, S)
    create_processed_events(op, S)


def downgrade() -> None:
    for table in ("processed_events", "outbox", "signing_keys", "role_grants", "roles"):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.accounts_of_user(uuid)")
    op.execute(f"DROP TABLE IF EXISTS {S}.memberships")
    op.execute(f"DROP TABLE IF EXISTS {S}.users")
