"""Tenant scope on audit events: a caller limited to some tenants reads only their events.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

from services.runtime.migrations import limit_to_tenant_scope

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "audit"


def upgrade() -> None:
    limit_to_tenant_scope(op, SCHEMA, "events")


def downgrade() -> None:
    op.execute(f"DROP POLICY tenant_scope ON {SCHEMA}.events")
