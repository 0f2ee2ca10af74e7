"""Scoped grants for users and service accounts, custom roles, authz versions, API keys,
refresh tokens, sign-in throttling, member deactivation, verified domains and domain rules.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from services.runtime.migrations import enable_account_rls, grant_app

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    # Erased users keep their row (and id, which the audit trail names) without personal data.
    op.execute(f"ALTER TABLE {S}.users DROP CONSTRAINT users_status_check")
    op.execute(
        f"ALTER TABLE {S}.users ADD CONSTRAINT users_status_check"
        " CHECK (status IN ('active', 'deactivated', 'erased'))"
    )

    # A member can be deactivated in one account without touching its other accounts.
    op.execute(f"ALTER TABLE {S}.memberships ADD COLUMN deactivated_at timestamptz")
    grant_app(op, S, "memberships", "DELETE")
    # Only active memberships count for the default account and sign-in.
    op.execute(
        f"CREATE OR REPLACE FUNCTION {S}.accounts_of_user(p_user_id uuid) RETURNS SETOF uuid"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT account_id FROM {S}.memberships"
        " WHERE user_id = p_user_id AND deleted_at IS NULL AND deactivated_at IS NULL"
        " ORDER BY account_id $$"
    )
    op.execute(
        f"CREATE FUNCTION {S}.memberships_of_user(p_user_id uuid)"
        " RETURNS TABLE (account_id uuid, deactivated_at timestamptz, created_at timestamptz)"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT account_id, deactivated_at, created_at FROM {S}.memberships"
        " WHERE user_id = p_user_id AND deleted_at IS NULL ORDER BY account_id $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.memberships_of_user(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.memberships_of_user(uuid) TO {S}_app")

    # Custom roles: soft-deleted, optionally cloned from a preset.
    op.execute(f"ALTER TABLE {S}.roles ADD COLUMN based_on text")
    op.execute(f"ALTER TABLE {S}.roles ADD COLUMN description text NOT NULL DEFAULT ''")
    op.execute(f"ALTER TABLE {S}.roles ADD COLUMN deleted_at timestamptz")
    op.execute(f"ALTER TABLE {S}.roles DROP CONSTRAINT roles_account_id_name_key")
    op.execute(
        f"CREATE UNIQUE INDEX roles_account_name_key ON {S}.roles (account_id, name)"
        " WHERE deleted_at IS NULL"
    )

    # Grants go to users or service accounts, on the account, a tenant-group subtree or a
    # tenant; a domain rule may have made them.
    op.execute(f"ALTER TABLE {S}.role_grants RENAME COLUMN user_id TO principal_id")
    op.execute(f"ALTER TABLE {S}.role_grants DROP CONSTRAINT role_grants_user_id_fkey")
    op.execute(
        f"ALTER TABLE {S}.role_grants ADD COLUMN principal_kind text NOT NULL DEFAULT 'user'"
        " CHECK (principal_kind IN ('user', 'service_account'))"
    )
    op.execute(f"ALTER TABLE {S}.role_grants ADD COLUMN scope_id uuid")
    op.execute(f"ALTER TABLE {S}.role_grants ADD COLUMN domain_rule_id uuid")
    op.execute(
        f"ALTER TABLE {S}.role_grants ADD CONSTRAINT role_grants_scope_check CHECK ("
        " (scope = 'account' AND scope_id IS NULL)"
        " OR (scope IN ('tenant_group', 'tenant') AND scope_id IS NOT NULL))"
    )
    op.execute(f"DROP INDEX {S}.role_grants_grant_key")
    op.execute(
        f"CREATE UNIQUE INDEX role_grants_grant_key ON {S}.role_grants"
        " (account_id, principal_id, role_id, scope, scope_id, domain_rule_id) NULLS NOT DISTINCT"
        " WHERE deleted_at IS NULL"
    )
    op.execute(f"ALTER INDEX {S}.role_grants_user_id_idx RENAME TO role_grants_principal_id_idx")
    op.execute(
        f"CREATE INDEX role_grants_domain_rule_idx ON {S}.role_grants (domain_rule_id)"
        " WHERE domain_rule_id IS NOT NULL"
    )
    grant_app(op, S, "role_grants", "DELETE")

    # One row per account, bumped in the same transaction as every change that can alter an
    # answer of Resolve, so a cache can check it with one primary-key read.
    op.execute(
        f"CREATE TABLE {S}.account_authz ("
        " account_id uuid PRIMARY KEY,"
        " version bigint NOT NULL DEFAULT 0,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    enable_account_rls(op, S, "account_authz")
    op.execute(f"DROP INDEX IF EXISTS {S}.account_authz_account_id_idx")  # the primary key is one
    grant_app(op, S, "account_authz", "SELECT, INSERT, UPDATE")

    op.execute(
        f"CREATE TABLE {S}.service_accounts ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " name text NOT NULL,"
        " description text NOT NULL DEFAULT '',"
        " created_by text NOT NULL DEFAULT '',"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX service_accounts_name_key ON {S}.service_accounts"
        " (account_id, lower(name)) WHERE deleted_at IS NULL"
    )
    enable_account_rls(op, S, "service_accounts")
    op.execute(
        f"CREATE POLICY owner_lookup ON {S}.service_accounts FOR SELECT TO {S}_owner USING (true)"
    )
    grant_app(op, S, "service_accounts", "SELECT, INSERT, UPDATE")
    # Resolve without an account: a service account belongs to exactly one.
    op.execute(
        f"CREATE FUNCTION {S}.account_of_service_account(p_id uuid) RETURNS uuid"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT account_id FROM {S}.service_accounts WHERE id = p_id AND deleted_at IS NULL $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.account_of_service_account(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.account_of_service_account(uuid) TO {S}_app")

    # API keys: only the SHA-256 of the secret is kept; the prefix finds the row.
    op.execute(
        f"CREATE TABLE {S}.api_keys ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " owner_id uuid NOT NULL,"
        " owner_kind text NOT NULL CHECK (owner_kind IN ('user', 'service_account')),"
        " name text NOT NULL DEFAULT '',"
        " prefix text NOT NULL UNIQUE,"
        " secret_hash bytea NOT NULL,"
        " permissions text[] NOT NULL DEFAULT '{}',"
        " expires_at timestamptz NOT NULL,"
        " last_used_at timestamptz,"
        " revoked_at timestamptz,"
        " created_by text NOT NULL DEFAULT '',"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(f"CREATE INDEX api_keys_owner_idx ON {S}.api_keys (account_id, owner_id)")
    enable_account_rls(op, S, "api_keys")
    op.execute(f"CREATE POLICY owner_lookup ON {S}.api_keys FOR SELECT TO {S}_owner USING (true)")
    grant_app(op, S, "api_keys", "SELECT, INSERT, UPDATE")
    op.execute(
        f"CREATE FUNCTION {S}.api_key_by_prefix(p_prefix text)"
        " RETURNS TABLE (id uuid, account_id uuid, secret_hash bytea)"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT id, account_id, secret_hash FROM {S}.api_keys WHERE prefix = p_prefix $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.api_key_by_prefix(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.api_key_by_prefix(text) TO {S}_app")

    # Refresh tokens are a (global) user's credentials, like its password hash: they are found
    # by hash before any account is known, so no account owns the row and there is no RLS. The
    # `acc` claim the token mints (claim_account_id) is not ownership. Only the SHA-256 of each
    # token is kept; a family is every token rotated from one sign-in.
    op.execute(
        f"CREATE TABLE {S}.refresh_tokens ("
        " id uuid PRIMARY KEY,"
        " family_id uuid NOT NULL,"
        f" user_id uuid NOT NULL REFERENCES {S}.users (id) ON DELETE CASCADE,"
        " claim_account_id uuid,"
        " token_hash bytea NOT NULL UNIQUE,"
        " expires_at timestamptz NOT NULL,"
        " used_at timestamptz,"
        " revoked_at timestamptz,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute(f"CREATE INDEX refresh_tokens_family_idx ON {S}.refresh_tokens (family_id)")
    op.execute(f"CREATE INDEX refresh_tokens_user_idx ON {S}.refresh_tokens (user_id)")
    grant_app(op, S, "refresh_tokens", "SELECT, INSERT, UPDATE, DELETE")

    # Failed sign-ins per email (whether or not a user has it, so locking reveals nothing).
    op.execute(
        f"CREATE TABLE {S}.login_throttle ("
        " email text PRIMARY KEY,"
        " failures integer NOT NULL DEFAULT 0,"
        " lockouts integer NOT NULL DEFAULT 0,"
        " locked_until timestamptz,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    grant_app(op, S, "login_throttle", "SELECT, INSERT, UPDATE, DELETE")

    # Email domains an account proved it controls; one account per verified domain.
    op.execute(
        f"CREATE TABLE {S}.domains ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        " domain text NOT NULL,"
        " verification_token text NOT NULL,"
        " verified_at timestamptz,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX domains_account_domain_key ON {S}.domains (account_id, domain)"
        " WHERE deleted_at IS NULL"
    )
    op.execute(
        f"CREATE UNIQUE INDEX domains_verified_key ON {S}.domains (domain)"
        " WHERE deleted_at IS NULL AND verified_at IS NOT NULL"
    )
    enable_account_rls(op, S, "domains")
    grant_app(op, S, "domains", "SELECT, INSERT, UPDATE")

    op.execute(
        f"CREATE TABLE {S}.domain_rules ("
        " id uuid PRIMARY KEY,"
        " account_id uuid NOT NULL,"
        f" domain_id uuid NOT NULL REFERENCES {S}.domains (id),"
        f" role_id uuid NOT NULL REFERENCES {S}.roles (id),"
        " scope_type text NOT NULL,"
        " scope_id uuid,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " deleted_at timestamptz,"
        " CHECK ((scope_type = 'account' AND scope_id IS NULL)"
        " OR (scope_type IN ('tenant_group', 'tenant') AND scope_id IS NOT NULL)))"
    )
    op.execute(
        f"CREATE UNIQUE INDEX domain_rules_key ON {S}.domain_rules"
        " (account_id, domain_id, role_id, scope_type, scope_id) NULLS NOT DISTINCT"
        " WHERE deleted_at IS NULL"
    )
    op.execute(f"CREATE INDEX domain_rules_domain_idx ON {S}.domain_rules (domain_id)")
    op.execute(f"CREATE INDEX domain_rules_role_idx ON {S}.domain_rules (role_id)")
    enable_account_rls(op, S, "domain_rules")
    grant_app(op, S, "domain_rules", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    for table in (
        "domain_rules",
        "domains",
        "login_throttle",
        "refresh_tokens",
        "api_keys",
        "service_accounts",
        "account_authz",
    ):
        op.execute(f"DROP TABLE IF EXISTS {S}.{table}")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.api_key_by_prefix(text)")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.account_of_service_account(uuid)")
    op.execute(f"DROP FUNCTION IF EXISTS {S}.memberships_of_user(uuid)")
    op.execute(f"DROP INDEX IF EXISTS {S}.role_grants_domain_rule_idx")
    op.execute(f"DROP INDEX IF EXISTS {S}.role_grants_grant_key")
    op.execute(f"DELETE FROM {S}.role_grants WHERE principal_kind <> 'user' OR scope <> 'account'")
    op.execute(f"ALTER TABLE {S}.role_grants DROP CONSTRAINT role_grants_scope_check")
    for column in ("domain_rule_id", "scope_id", "principal_kind"):
        op.execute(f"ALTER TABLE {S}.role_grants DROP COLUMN {column}")
    op.execute(f"ALTER TABLE {S}.role_grants RENAME COLUMN principal_id TO user_id")
    op.execute(f"ALTER INDEX {S}.role_grants_principal_id_idx RENAME TO role_grants_user_id_idx")
    op.execute(
        f"ALTER TABLE {S}.role_grants ADD CONSTRAINT role_grants_user_id_fkey"
        f" FOREIGN KEY (user_id) REFERENCES {S}.users (id)"
    )
    op.execute(
        f"CREATE UNIQUE INDEX role_grants_grant_key ON {S}.role_grants"
        " (account_id, user_id, role_id, scope) WHERE deleted_at IS NULL"
    )
    op.execute(f"DROP INDEX IF EXISTS {S}.roles_account_name_key")
    op.execute(f"DELETE FROM {S}.roles WHERE deleted_at IS NOT NULL")
    op.execute(
        f"ALTER TABLE {S}.roles ADD CONSTRAINT roles_account_id_name_key UNIQUE (account_id, name)"
    )
    for column in ("deleted_at", "description", "based_on"):
        op.execute(f"ALTER TABLE {S}.roles DROP COLUMN {column}")
    op.execute(
        f"CREATE OR REPLACE FUNCTION {S}.accounts_of_user(p_user_id uuid) RETURNS SETOF uuid"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT account_id FROM {S}.memberships"
        " WHERE user_id = p_user_id AND deleted_at IS NULL ORDER BY account_id $$"
    )
    op.execute(f"ALTER TABLE {S}.memberships DROP COLUMN deactivated_at")
    op.execute(f"UPDATE {S}.users SET status = 'deactivated' WHERE status = 'erased'")
    op.execute(f"ALTER TABLE {S}.users DROP CONSTRAINT users_status_check")
    op.execute(
        f"ALTER TABLE {S}.users ADD CONSTRAINT users_status_check"
        " CHECK (status IN ('active', 'deactivated'))"
    )
