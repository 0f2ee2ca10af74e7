"""Load jobs belong to the tenants of their file's drop zone: a caller scoped to some tenants
sees a job only when its drop zone's tenants overlap the caller's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-02-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "canonical"


def upgrade() -> None:
    op.execute(
        f"CREATE POLICY tenant_scope ON {S}.jobs AS RESTRICTIVE USING ("
        "(select current_setting('app.all_tenants', true)) = 'on'"
        " OR tenant_ids && ((select nullif(current_setting('app.tenant_ids', true), ''))::uuid[]))"
    )


def downgrade() -> None:
    op.execute(f"DROP POLICY IF EXISTS tenant_scope ON {S}.jobs")
