"""Load jobs: queued when a file is received, worked from JetStream, readable through the API.

Exactly once, whatever crashes: the job's row and its queue message are written in one
transaction (the outbox); a worker holds the job with an advisory lock for the one
transaction that loads the file and records the outcome, the job row, the file's load and
`load.completed` together; a redelivery of a finished job does nothing; an unfinished one is
loaded again from the start, which the upsert by dedupe key makes safe. Attempts that fail
for a passing reason (a service away) are retried with backoff; the last one records the job
as failed, with the reason, and tells ingestion.
"""

import logging
import uuid
from dataclasses import dataclass

import grpc
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.canonical.v1 import canonical_pb2
from canopy.common.v1 import events_pb2
from services.canonical.adapters.db.jobs import JobRepository
from services.canonical.adapters.db.repositories import LoadRepository, SourceSchemaRepository
from services.canonical.domain.jobs import LOAD, STATUSES, Job, given_up_reason, should_queue
from services.canonical.domain.loads import LoadOutcome
from services.canonical.service_layer.load import Loader, LoadFile
from services.runtime.context import CallContext, service_context
from services.runtime.db import Database, Scope
from services.runtime.errors import InvalidInput, NotFound
from services.runtime.events import new_event, unpack
from services.runtime.ids import new_id, parse_id
from services.runtime.jobs import Delivery, JobBusy, job_subject, new_job
from services.runtime.outbox import Outbox
from services.runtime.pages import decode_token, next_token, page_size

log = logging.getLogger(__name__)

LOAD_JOB = job_subject("canonical", "load")
LOAD_STARTED = "canopy.canonical.load.started"
LOAD_COMPLETED = "canopy.canonical.load.completed"
DEFAULT_PROGRESS_ROWS = 10_000


@dataclass(frozen=True)
class QueueLoad:
    """A received file to load (again, when `reprocess`)."""

    account_id: uuid.UUID
    file_id: uuid.UUID
    file_name: str
    size_bytes: int
    source_schema: str
    tenant_ids: frozenset[uuid.UUID]
    reprocess: bool
    event_id: uuid.UUID
    correlation_id: str = ""


async def queue_load(session: AsyncSession, outbox: Outbox, command: QueueLoad) -> uuid.UUID | None:
    """Record a load job and queue its message, in the caller's transaction; None when the
    file already has a job and this is no retry or reprocess."""
    repository = JobRepository(session)
    earlier = await repository.count_for_file(command.file_id)
    if not should_queue(reprocess=command.reprocess, earlier_jobs=earlier):
        log.info(
            "file already has a load job; not queued again",
            extra={"fields": {"file_id": str(command.file_id)}},
        )
        return None
    job_id = new_id()
    await repository.add(
        job_id=job_id,
        account_id=command.account_id,
        kind=LOAD,
        file_id=command.file_id,
        file_name=command.file_name,
        size_bytes=command.size_bytes,
        source_schema=command.source_schema,
        tenant_ids=command.tenant_ids,
        reprocess=command.reprocess,
        event_id=command.event_id,
    )
    ctx = _context(command.account_id, command.correlation_id)
    payload = canonical_pb2.LoadJob(job_id=str(job_id), file_id=str(command.file_id))
    await outbox.add(session, new_job(LOAD_JOB, payload, account_id=command.account_id, ctx=ctx))
    return job_id


class LoadJobs:
    """The handler, retry hook and dead letter of the load job worker."""

    def __init__(
        self,
        *,
        db: Database,
        outbox: Outbox,
        loader: Loader,
        progress_rows: int = DEFAULT_PROGRESS_ROWS,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.loader = loader
        self.progress_rows = progress_rows

    async def run(self, message: events_pb2.Event, delivery: Delivery) -> None:
        found = await self._job_of(message)
        if found is None:
            return
        account_id, job = found
        if job.finished:
            return  # a redelivery of a job that is done: nothing to do twice
        scope = Scope.account(account_id)
        ctx = _context(account_id, message.correlation_id)
        async with self.db.transaction(scope) as session:
            jobs = JobRepository(session)
            if not await jobs.try_lock(job.id):
                raise JobBusy(f"job {job.id} is being worked on")
            attempt = await self._start(account_id, job, ctx)
            command = LoadFile(
                account_id=account_id,
                file_id=job.file_id,
                source_schema=job.source_schema,
                tenant_ids=job.tenant_ids,
                correlation_id=message.correlation_id,
                size_bytes=job.size_bytes,
            )
            progress = _JobProgress(self.db, scope, job.id, self.progress_rows, delivery)
            outcome = await self.loader.load(session, command, progress)
            await self._finish(session, account_id, job, outcome, ctx)
        log.info(
            "file load finished",
            extra={
                "fields": {
                    "job_id": str(job.id),
                    "file_id": str(job.file_id),
                    "attempt": attempt,
                    "status": outcome.status,
                    "rows_total": outcome.counts.rows_total,
                    "created": outcome.counts.created,
                    "updated": outcome.counts.updated,
                    "unchanged": outcome.counts.unchanged,
                    "rejected": outcome.counts.rejected,
                }
            },
        )

    async def retrying(self, message: events_pb2.Event, error: BaseException, attempt: int) -> None:
        found = await self._job_of(message)
        if found is None:
            return
        account_id, job = found
        async with self.db.transaction(Scope.account(account_id)) as session:
            await JobRepository(session).retrying(
                job.id, f"attempt {attempt} failed: {describe(error)}"
            )

    async def give_up(self, message: events_pb2.Event, error: BaseException, attempts: int) -> None:
        """The dead letter: the job is failed with the reason, and ingestion is told."""
        found = await self._job_of(message)
        if found is None:
            return
        account_id, job = found
        ctx = _context(account_id, message.correlation_id)
        outcome = LoadOutcome.failed(given_up_reason(attempts, describe(error)))
        async with self.db.transaction(Scope.account(account_id)) as session:
            await self._finish(session, account_id, job, outcome, ctx, last_error=describe(error))

    async def _job_of(self, message: events_pb2.Event) -> tuple[uuid.UUID, Job] | None:
        try:
            payload = unpack(message, canonical_pb2.LoadJob)
            assert isinstance(payload, canonical_pb2.LoadJob)
            account_id = uuid.UUID(message.account_id)
            job_id = uuid.UUID(payload.job_id)
        except ValueError:
            log.error("a load job message without a valid account or job id; dropped")
            return None
        async with self.db.transaction(Scope.account(account_id)) as session:
            job = await JobRepository(session).get(job_id)
        if job is None:
            log.error(
                "a load job message for an unknown job; dropped",
                extra={"fields": {"job_id": str(job_id)}},
            )
            return None
        return account_id, job

    async def _start(self, account_id: uuid.UUID, job: Job, ctx: CallContext) -> int:
        """Running, in a short transaction of its own, so people see the job being worked on."""
        async with self.db.transaction(Scope.account(account_id)) as session:
            attempt = await JobRepository(session).start_attempt(job.id)
            # The routed schema's current mapping version; a file whose header is another
            # schema's records the one it was loaded with when it completes.
            routed = await SourceSchemaRepository(session).named(job.source_schema)
            version = routed.version if routed else None
            await LoadRepository(session).start(
                account_id=account_id,
                file_id=job.file_id,
                source_schema=job.source_schema,
                source_schema_version=version,
            )
            payload = canonical_pb2.LoadStarted(
                file_id=str(job.file_id),
                source_schema=job.source_schema,
                source_schema_version=version or 0,
            )
            await self.outbox.add(
                session, new_event(LOAD_STARTED, payload, account_id=account_id, ctx=ctx)
            )
        return attempt

    async def _finish(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        job: Job,
        outcome: LoadOutcome,
        ctx: CallContext,
        *,
        last_error: str = "",
    ) -> None:
        if not await JobRepository(session).finish(job.id, outcome, last_error=last_error):
            return  # finished meanwhile (a duplicate delivery): tell nobody twice
        loads = LoadRepository(session)
        if not await loads.exists(job.file_id):
            await loads.start(
                account_id=account_id, file_id=job.file_id, source_schema=job.source_schema
            )
        await loads.finish(file_id=job.file_id, outcome=outcome)
        counts = outcome.counts
        payload = canonical_pb2.LoadCompleted(
            file_id=str(job.file_id),
            status=outcome.status,
            reason=outcome.reason,
            rows_total=counts.rows_total,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            rejected=counts.rejected,
            source_schema_version=outcome.source_schema_version,
        )
        await self.outbox.add(
            session, new_event(LOAD_COMPLETED, payload, account_id=account_id, ctx=ctx)
        )


class _JobProgress:
    """Writes the rows read so far to the job every `every` rows, in a short transaction."""

    def __init__(
        self, db: Database, scope: Scope, job_id: uuid.UUID, every: int, delivery: Delivery
    ) -> None:
        self.db = db
        self.scope = scope
        self.job_id = job_id
        self.every = max(1, every)
        self.delivery = delivery
        self.recorded = 0

    async def __call__(self, rows: int) -> None:
        if rows - self.recorded < self.every:
            return
        self.recorded = rows
        async with self.db.transaction(self.scope) as session:
            await JobRepository(session).progress(self.job_id, rows)


def describe(error: BaseException) -> str:
    """What went wrong, fit for the job's record: never a row's values or a secret."""
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name.lower()}: {error.details()}"[:300]
    if isinstance(error, DBAPIError):
        code = getattr(error.orig, "sqlstate", "") or ""
        return f"database error {code}".strip()
    if isinstance(error, (ConnectionError, TimeoutError)):
        return f"{type(error).__name__}: {error}"[:300]
    return type(error).__name__


async def get_job(*, db: Database, ctx: CallContext, job_id: str) -> Job:
    ctx.require_account()
    parsed = parse_id(job_id, field="id")
    async with db.transaction(Scope.of(ctx)) as session:
        job = await JobRepository(session).get(parsed)
    if job is None:
        raise NotFound(f"job {job_id} does not exist")
    return job


async def list_jobs(
    *,
    db: Database,
    ctx: CallContext,
    size: int,
    token: str,
    file_id: str = "",
    status: str = "",
) -> tuple[list[Job], str]:
    """A page of the account's load jobs, newest first, of one file or status if asked."""
    ctx.require_account()
    if status and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    limit, after = page_size(size), decode_token(token)
    file = parse_id(file_id, field="file_id") if file_id else None
    async with db.transaction(Scope.of(ctx)) as session:
        items = await JobRepository(session).page(
            after=after, limit=limit, file_id=file, status=status
        )
    return items, next_token(items, limit)


def _context(account_id: uuid.UUID, correlation_id: str) -> CallContext:
    return service_context(
        "canonical",
        account_id=account_id,
        permissions=(),
        correlation_id=correlation_id or None,
    )
