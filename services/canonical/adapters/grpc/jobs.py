"""The load job RPCs of CanonicalService (ListJobs, GetJob): proto in, use case, proto out."""

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from canopy.canonical.v1 import canonical_pb2
from services.canonical.adapters.grpc.servicer import CanonicalServicer
from services.canonical.domain.jobs import Job
from services.canonical.service_layer import jobs
from services.runtime.grpc_server import context_of_call


class CanonicalServicerWithJobs(CanonicalServicer):
    async def ListJobs(
        self, request: canonical_pb2.ListJobsRequest, context: Any
    ) -> canonical_pb2.ListJobsResponse:
        items, token = await jobs.list_jobs(
            db=self.db,
            ctx=context_of_call(),
            size=request.page_size,
            token=request.page_token,
            file_id=request.file_id,
            status=request.status,
        )
        return canonical_pb2.ListJobsResponse(
            jobs=[job_message(j) for j in items], next_page_token=token
        )

    async def GetJob(self, request: canonical_pb2.GetJobRequest, context: Any) -> canonical_pb2.Job:
        return job_message(await jobs.get_job(db=self.db, ctx=context_of_call(), job_id=request.id))


def job_message(job: Job) -> canonical_pb2.Job:
    message = canonical_pb2.Job(
        id=str(job.id),
        kind=job.kind,
        file_id=str(job.file_id),
        file_name=job.file_name,
        source_schema=job.source_schema,
        reprocess=job.reprocess,
        status=job.status,
        attempts=job.attempts,
        rows_processed=job.rows_processed,
        rows_total=job.rows_total,
        created=job.created,
        updated=job.updated,
        unchanged=job.unchanged,
        rejected=job.rejected,
        reason=job.reason,
        last_error=job.last_error,
        size_bytes=job.size_bytes,
        created_at=_timestamp(job.created_at),
        updated_at=_timestamp(job.updated_at),
    )
    if job.started_at is not None:
        message.started_at.CopyFrom(_timestamp(job.started_at))
    if job.finished_at is not None:
        message.finished_at.CopyFrom(_timestamp(job.finished_at))
    return message


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp
