"""Fewer indexes to maintain per loaded row: drop the single-column account_id indexes that an
index or unique constraint leading with account_id already serves.

Every read of these tables runs under the account's row-level security policy
(`account_id = app.account_id`); for records, the blind index, rejects and loads a wider index
starting with account_id answers that condition as well, so the narrow one is only extra work
for every insert of a load. Kept: records (id) primary key, (account_id, dedupe_key) unique
(the merge's key), (account_id, schema, id) and (account_id, schema, tenant_id, id) (paging,
all tenants or one); record_index (account_id, dedupe_key, field) primary key and
(account_id, schema, field, digest) (search); rejects (account_id, file_id, id); loads
(account_id, file_id) unique; jobs (account_id, id).

Revision ID: 0005
Revises: 0004
Create Date: 2026-02-10
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "canonical"
# Tables whose account_id index is covered by another index leading with account_id.
COVERED = ("records", "record_index", "rejects", "loads", "jobs")


def upgrade() -> None:
    for table in COVERED:
        op.execute(f"DROP INDEX IF EXISTS {S}.{table}_account_id_idx")


def downgrade() -> None:
    for table in COVERED:
        op.execute(f"CREATE INDEX IF NOT EXISTS {table}_account_id_idx ON {S}.{table} (account_id)")
