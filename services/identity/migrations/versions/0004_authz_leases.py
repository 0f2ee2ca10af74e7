"""Leases on caching authz versions: who must hear of an authorization change before it commits.

A holder (a gateway process) takes a lease with RenewAuthzLease and keeps extending it. The
table is operational state about gateway processes, not account data, so it has no account
column and no row-level security.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from services.runtime.migrations import grant_app

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.execute(
        f"CREATE TABLE {S}.authz_leases ("
        " lease_id uuid PRIMARY KEY,"
        " fence_subject text NOT NULL,"
        " expires_at timestamptz NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    grant_app(op, S, "authz_leases")


def downgrade() -> None:
    op.execute(f"DROP TABLE {S}.authz_leases")
