"""authz_version_of(account): the account's authz version in one statement, for the gateway's
per-request check (no transaction or scope settings around it).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    # Like accounts_of_user: SECURITY DEFINER, owned by identity_owner, whom FORCE subjects to
    # RLS too, so the owner reads the counters through its own SELECT-only policy. The version
    # is a counter, not customer data; only the app role may call the function.
    op.execute(
        f"CREATE POLICY owner_lookup ON {S}.account_authz FOR SELECT TO {S}_owner USING (true)"
    )
    op.execute(
        f"CREATE FUNCTION {S}.authz_version_of(p_account_id uuid) RETURNS bigint"
        " LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity AS $$"
        f" SELECT coalesce((SELECT version FROM {S}.account_authz"
        " WHERE account_id = p_account_id), 0) $$"
    )
    op.execute(f"REVOKE ALL ON FUNCTION {S}.authz_version_of(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {S}.authz_version_of(uuid) TO {S}_app")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {S}.authz_version_of(uuid)")
    op.execute(f"DROP POLICY owner_lookup ON {S}.account_authz")
