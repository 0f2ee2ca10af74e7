"""Jobs on JetStream: one work-queue stream, queued through the outbox, worked with explicit acks.

A service queues a job by writing an envelope whose type is the job's subject
(`canopy.jobs.<context>.<kind>`) to its outbox, in the same transaction as the job's row, so
the job exists exactly when its message will. `JobWorker` pulls one job at a time, keeps it
alive with in-progress acks while it runs, acks it when the handler returns, redelivers it
with exponential backoff when the handler raises, and hands it to a dead-letter callback on
the last attempt. The handler must be idempotent: a redelivery after a crash runs it again.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from canopy.common.v1 import events_pb2
from services.runtime.context import CallContext
from services.runtime.events import CONTEXTS
from services.runtime.ids import new_id
from services.runtime.logs import correlation_id

log = logging.getLogger(__name__)

JOBS_STREAM = "CANOPY_JOBS"
JOBS_SUBJECTS = ["canopy.jobs.>"]


def job_subject(context: str, kind: str) -> str:
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}")
    return f"canopy.jobs.{context}.{kind}"


def new_job(
    subject: str,
    payload: Message,
    *,
    account_id: uuid.UUID | None,
    ctx: CallContext | None = None,
) -> events_pb2.Event:
    """The envelope of one job message; its type is its subject, so `Outbox.add` queues it."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[:2] != ["canopy", "jobs"] or parts[2] not in CONTEXTS:
        raise ValueError(f"job subject must be canopy.jobs.<context>.<kind>: {subject}")
    job = events_pb2.Event(
        id=str(new_id()),
        type=subject,
        account_id=str(account_id) if account_id else "",
        correlation_id=ctx.correlation_id if ctx else str(new_id()),
    )
    job.occurred_at.FromDatetime(datetime.now(UTC))
    if ctx is not None:
        job.actor.principal_id = ctx.principal_id
        job.actor.kind = ctx.principal_kind
    job.payload.Pack(payload)
    return job


async def ensure_job_stream(
    js: JetStreamContext, *, replicas: int = 1, duplicate_window: float = 3600
) -> None:
    """The work-queue stream of every job (a message leaves it when a worker acks it)."""
    config = StreamConfig(
        name=JOBS_STREAM,
        subjects=JOBS_SUBJECTS,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=duplicate_window,
        num_replicas=replicas,
    )
    try:
        await js.stream_info(JOBS_STREAM)
    except NotFoundError:
        await js.add_stream(config)


class JobBusy(Exception):
    """Another worker runs this job right now: look again later, without using up an attempt."""


@dataclass
class Delivery:
    """One delivery of a job message: which attempt it is, and a heartbeat."""

    message: Msg
    attempt: int
    max_attempts: int

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def in_progress(self) -> None:
        await self.message.in_progress()


JobHandler = Callable[[events_pb2.Event, Delivery], Awaitable[None]]
# (job, the error, attempt): called when an attempt failed and another will follow.
RetryHook = Callable[[events_pb2.Event, BaseException, int], Awaitable[None]]
# (job, the error, attempts): the last attempt failed; record the job as failed for good.
GiveUp = Callable[[events_pb2.Event, BaseException, int], Awaitable[None]]


class JobWorker:
    """Works the jobs of one subject, one at a time, with a durable pull consumer."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        subject: str,
        durable: str,
        handler: JobHandler,
        give_up: GiveUp,
        on_retry: RetryHook | None = None,
        max_attempts: int = 8,
        ack_wait_seconds: float = 30,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        self.js = js
        self.subject = subject
        self.durable = durable
        self.handler = handler
        self.give_up = give_up
        self.on_retry = on_retry
        self.max_attempts = max_attempts
        self.ack_wait_seconds = ack_wait_seconds
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))

    async def run(self, stop: asyncio.Event) -> None:
        subscription = await self.js.pull_subscribe(
            self.subject,
            durable=self.durable,
            stream=JOBS_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait_seconds,
                max_deliver=self.max_attempts,
                deliver_policy=DeliverPolicy.ALL,
            ),
        )
        while not stop.is_set():
            try:
                messages = await subscription.fetch(1, timeout=1)
            except (NatsTimeout, TimeoutError):
                continue
            except Exception:
                log.warning("job fetch failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for message in messages:
                await self.handle(message)
        try:
            await subscription.unsubscribe()
        except Exception:
            log.debug("unsubscribe at stop failed", exc_info=True)

    async def handle(self, message: Msg) -> None:
        try:
            job = events_pb2.Event.FromString(message.data)
        except Exception:
            log.error("undecodable job terminated", extra={"fields": {"subject": message.subject}})
            await _quietly(message.term())
            return
        correlation_id.set(job.correlation_id)
        delivery = Delivery(message, message.metadata.num_delivered, self.max_attempts)
        fields = {"job_message": job.id, "type": job.type, "attempt": delivery.attempt}
        heartbeat = asyncio.create_task(self._keep_alive(delivery))
        try:
            await self.handler(job, delivery)
        except JobBusy:
            heartbeat.cancel()
            await _quietly(message.nak(delay=self.ack_wait_seconds))
            return
        except asyncio.CancelledError:
            heartbeat.cancel()
            # Shutting down: let another worker take it at once.
            await _quietly(asyncio.shield(message.nak()))
            raise
        except Exception as error:
            heartbeat.cancel()
            await self._failed(message, job, delivery, error, fields)
            return
        heartbeat.cancel()
        await _quietly(message.ack())

    async def _failed(
        self,
        message: Msg,
        job: events_pb2.Event,
        delivery: Delivery,
        error: Exception,
        fields: dict[str, object],
    ) -> None:
        if delivery.last_attempt:
            log.error("job failed for good", exc_info=True, extra={"fields": fields})
            try:
                await self.give_up(job, error, delivery.attempt)
            except Exception:
                log.exception("recording a failed job failed; redelivering it")
                await _quietly(message.nak(delay=self.backoff(delivery.attempt)))
                return
            await _quietly(message.term())
            return
        log.warning("job failed; will retry", exc_info=True, extra={"fields": fields})
        if self.on_retry is not None:
            try:
                await self.on_retry(job, error, delivery.attempt)
            except Exception:
                log.warning("recording a job retry failed", exc_info=True)
        await _quietly(message.nak(delay=self.backoff(delivery.attempt)))

    async def _keep_alive(self, delivery: Delivery) -> None:
        while True:
            await asyncio.sleep(self.ack_wait_seconds / 3)
            try:
                await delivery.in_progress()
            except Exception:
                log.debug("job heartbeat failed", exc_info=True)


async def _quietly(acknowledgement: Awaitable[None]) -> None:
    """An ack that cannot reach NATS is not an error of the job: it is redelivered, and the
    handler finds the job already done."""
    try:
        await acknowledgement
    except Exception:
        log.warning("job acknowledgement failed; the job will be redelivered", exc_info=True)
