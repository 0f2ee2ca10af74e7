"""Building and reading the one event envelope (`canopy.common.v1.Event`)."""

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message

from canopy.common.v1 import events_pb2
from services.runtime.context import CallContext
from services.runtime.ids import new_id

CONTEXTS = ("identity", "tenancy", "ingestion", "canonical", "audit")


def stream_name(context: str) -> str:
    return f"CANOPY_{context.upper()}"


def stream_subjects(context: str) -> list[str]:
    return [f"canopy.{context}.>"]


def new_event(
    event_type: str,
    payload: Message,
    *,
    account_id: uuid.UUID | None,
    ctx: CallContext | None = None,
    tenant_id: uuid.UUID | None = None,
) -> events_pb2.Event:
    """An envelope for `payload`; its type is its subject: canopy.<context>.<entity>.<verb>."""
    if not event_type.startswith("canopy.") or event_type.split(".")[1] not in CONTEXTS:
        raise ValueError(f"event type must be canopy.<context>.<entity>.<verb>: {event_type}")
    event = events_pb2.Event(
        id=str(new_id()),
        type=event_type,
        account_id=str(account_id) if account_id else "",
        tenant_id=str(tenant_id) if tenant_id else "",
        correlation_id=ctx.correlation_id if ctx else str(new_id()),
    )
    event.occurred_at.FromDatetime(datetime.now(UTC))
    if ctx is not None:
        event.actor.principal_id = ctx.principal_id
        event.actor.kind = ctx.principal_kind
        event.actor.source_address = ctx.source_address
    event.payload.Pack(payload)
    return event


def unpack(event: events_pb2.Event, message_type: type[Message]) -> Message:
    payload = message_type()
    if not event.payload.Unpack(payload):
        raise ValueError(f"{event.type} does not carry {message_type.DESCRIPTOR.full_name}")
    return payload
