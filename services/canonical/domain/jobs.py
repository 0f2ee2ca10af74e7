"""Load jobs: a queued load of one file, its status as it runs, retries and gives up."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.canonical.domain.loads import FAILED, LOADED, PARTIALLY_LOADED, QUARANTINED

LOAD = "load"

QUEUED = "queued"
RUNNING = "running"
# An attempt failed for a passing reason (a service or the network away); another follows.
RETRYING = "retrying"
FINAL_STATUSES = frozenset({LOADED, PARTIALLY_LOADED, FAILED, QUARANTINED})
STATUSES = (QUEUED, RUNNING, RETRYING, LOADED, PARTIALLY_LOADED, FAILED, QUARANTINED)


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    kind: str
    file_id: uuid.UUID
    file_name: str
    size_bytes: int
    source_schema: str
    tenant_ids: frozenset[uuid.UUID]
    reprocess: bool
    status: str
    attempts: int
    rows_processed: int
    rows_total: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    reason: str
    last_error: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


def should_queue(*, reprocess: bool, earlier_jobs: int) -> bool:
    """A file is loaded once; only an explicit retry or reprocess loads it again."""
    return reprocess or earlier_jobs == 0


def may_see_rejects(
    caller_tenants: frozenset[uuid.UUID] | None, file_tenants: frozenset[uuid.UUID]
) -> bool:
    """A file's rejects hold rows of any tenant of its drop zone (and rows whose tenant code
    resolved to none), so a caller limited to some tenants sees them only when every tenant
    of the file's drop zone is one of its own; an unscoped file only for unlimited callers."""
    if caller_tenants is None:
        return True
    return bool(file_tenants) and file_tenants <= caller_tenants


def given_up_reason(attempts: int, error: str) -> str:
    return f"gave up after {attempts} attempts; the last failed with: {error}"
