"""Audit events and verification results as AuditService messages."""

import math
from typing import Any

from google.protobuf import struct_pb2

from canopy.audit.v1 import audit_pb2
from services.audit.domain.chain import AuditEvent, Verification


def event_message(event: AuditEvent) -> audit_pb2.AuditEvent:
    record = event.record
    message = audit_pb2.AuditEvent(
        id=str(event.id),
        sequence=event.sequence,
        event_id=str(record.event_id),
        type=record.type,
        account_id=str(record.account_id),
        tenant_id=str(record.tenant_id) if record.tenant_id else "",
        actor_id=record.actor_id,
        actor_kind=record.actor_kind,
        source_address=record.source_address,
        correlation_id=record.correlation_id,
        payload=payload_struct(record.payload),
        prev_hash=event.prev_hash,
        hash=event.hash,
    )
    message.occurred_at.FromDatetime(record.occurred_at)
    if event.recorded_at is not None:
        message.recorded_at.FromDatetime(event.recorded_at)
    return message


def payload_struct(payload: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_struct_value(payload))
    return struct


def _struct_value(value: Any) -> Any:
    """Struct numbers are doubles: integers beyond a double's range are shown as text."""
    if isinstance(value, dict):
        return {key: _struct_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_struct_value(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            as_double = float(value)
        except OverflowError:
            return str(value)
        return as_double if math.isfinite(as_double) else str(value)
    return value


def verification_message(result: Verification) -> audit_pb2.VerifyChainResponse:
    return audit_pb2.VerifyChainResponse(
        ok=result.ok,
        events_checked=result.events_checked,
        first_bad_event_id=str(result.first_bad_event_id or ""),
        reason=result.reason,
    )
