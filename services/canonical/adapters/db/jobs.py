"""The load jobs repository; works inside the caller's RLS-scoped session."""

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.canonical.adapters.db.tables import jobs
from services.canonical.domain.jobs import FINAL_STATUSES, QUEUED, RETRYING, RUNNING, Job
from services.canonical.domain.loads import LoadOutcome

# Two-key advisory locks: (this number, the job's hash) never collides with other users.
JOB_LOCK_SPACE = 0x6A6F62  # "job"


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        job_id: uuid.UUID,
        account_id: uuid.UUID,
        kind: str,
        file_id: uuid.UUID,
        file_name: str,
        size_bytes: int,
        source_schema: str,
        tenant_ids: Collection[uuid.UUID],
        reprocess: bool,
        event_id: uuid.UUID,
    ) -> None:
        await self.session.execute(
            jobs.insert().values(
                id=job_id,
                account_id=account_id,
                kind=kind,
                file_id=file_id,
                file_name=file_name,
                size_bytes=size_bytes,
                source_schema=source_schema,
                tenant_ids=sorted(tenant_ids),
                reprocess=reprocess,
                event_id=event_id,
                status=QUEUED,
            )
        )

    async def count_for_file(self, file_id: uuid.UUID) -> int:
        statement = select(func.count()).select_from(jobs).where(jobs.c.file_id == file_id)
        return int((await self.session.execute(statement)).scalar_one())

    async def tenants_of_file(self, file_id: uuid.UUID) -> frozenset[uuid.UUID] | None:
        """The drop-zone tenants of the file's jobs this session sees; None when it sees none."""
        statement = select(jobs.c.tenant_ids).where(jobs.c.file_id == file_id)
        found = [frozenset(row.tenant_ids) for row in await self.session.execute(statement)]
        return frozenset().union(*found) if found else None

    async def get(self, job_id: uuid.UUID) -> Job | None:
        row = (await self.session.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return _job(row) if row else None

    async def page(
        self,
        *,
        after: uuid.UUID | None,
        limit: int,
        file_id: uuid.UUID | None = None,
        status: str = "",
    ) -> list[Job]:
        # Newest first: people look for the jobs that run now or just ran.
        statement = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if after is not None:
            statement = statement.where(jobs.c.id < after)
        if file_id is not None:
            statement = statement.where(jobs.c.file_id == file_id)
        if status:
            statement = statement.where(jobs.c.status == status)
        return [_job(row) for row in await self.session.execute(statement)]

    async def try_lock(self, job_id: uuid.UUID) -> bool:
        """Hold the job for this transaction; False when another transaction holds it."""
        statement = text("SELECT pg_try_advisory_xact_lock(:space, hashtext(:job))")
        result = await self.session.execute(
            statement, {"space": JOB_LOCK_SPACE, "job": str(job_id)}
        )
        return bool(result.scalar_one())

    async def start_attempt(self, job_id: uuid.UUID) -> int:
        """Mark the job running, count the attempt, reset its progress; the attempt number."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.not_in(FINAL_STATUSES))
            .values(
                status=RUNNING,
                attempts=jobs.c.attempts + 1,
                rows_processed=0,
                started_at=func.now(),
                updated_at=func.now(),
            )
            .returning(jobs.c.attempts)
        )
        return int((await self.session.execute(statement)).scalar_one_or_none() or 0)

    async def progress(self, job_id: uuid.UUID, rows_processed: int) -> None:
        await self.session.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == RUNNING)
            .values(rows_processed=rows_processed, updated_at=func.now())
        )

    async def retrying(self, job_id: uuid.UUID, error: str) -> None:
        await self.session.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.not_in(FINAL_STATUSES))
            .values(status=RETRYING, last_error=error, updated_at=func.now())
        )

    async def finish(
        self, job_id: uuid.UUID, outcome: LoadOutcome, *, last_error: str = ""
    ) -> bool:
        """Record the job's outcome; False when it had already finished (nothing changes)."""
        counts = outcome.counts
        values: dict[str, Any] = {
            "status": outcome.status,
            "reason": outcome.reason,
            "rows_total": counts.rows_total,
            "rows_processed": counts.rows_total,
            "created": counts.created,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "rejected": counts.rejected,
            "finished_at": func.clock_timestamp(),
            "updated_at": func.now(),
        }
        if last_error:
            values["last_error"] = last_error
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.not_in(FINAL_STATUSES))
            .values(**values)
            .returning(jobs.c.id)
        )
        return (await self.session.execute(statement)).first() is not None


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        file_id=row.file_id,
        file_name=row.file_name,
        size_bytes=row.size_bytes,
        source_schema=row.source_schema,
        tenant_ids=frozenset(row.tenant_ids),
        reprocess=row.reprocess,
        status=row.status,
        attempts=row.attempts,
        rows_processed=row.rows_processed,
        rows_total=row.rows_total,
        created=row.created,
        updated=row.updated,
        unchanged=row.unchanged,
        rejected=row.rejected,
        reason=row.reason,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
