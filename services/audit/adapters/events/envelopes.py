"""Reading an event envelope (`canopy.common.v1.Event`) as the audit log records it."""

import base64
import importlib
import logging
import pkgutil
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from google.protobuf import any_pb2, json_format

import canopy
from canopy.common.v1 import events_pb2
from services.audit.domain.chain import EventRecord

log = logging.getLogger(__name__)


@cache
def register_contract_types() -> list[str]:
    """Import every generated `canopy.*.v1.*_pb2` module so any payload type resolves.

    An `Any` decodes only if its message type is in the default descriptor pool, and a
    module registers its types when imported; walking the package picks up new contracts
    without a change here.
    """
    names = [
        info.name
        for info in pkgutil.walk_packages(canopy.__path__, prefix="canopy.")
        if info.name.endswith("_pb2")
    ]
    for name in names:
        importlib.import_module(name)
    return names


def payload_of(payload: any_pb2.Any) -> dict[str, Any]:
    """The payload as JSON (`{"@type": url, field: value, ...}`, proto field names).

    A type this service does not know (or cannot render as JSON) is still kept, as its type
    URL and base64 bytes, so nothing is lost and the payload can be decoded later.
    """
    if not payload.type_url:
        return {}
    try:
        return json_format.MessageToDict(payload, preserving_proto_field_name=True)
    except (TypeError, ValueError, KeyError) as error:
        log.warning(
            "event payload kept undecoded",
            extra={"fields": {"type_url": payload.type_url, "error": type(error).__name__}},
        )
        return {"@type": payload.type_url, "@value": base64.b64encode(payload.value).decode()}


def optional_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def record_of(event: events_pb2.Event) -> EventRecord:
    """The audit record of an envelope; an event with no account joins the platform chain."""
    occurred_at = (
        event.occurred_at.ToDatetime(tzinfo=UTC)
        if event.HasField("occurred_at")
        else datetime.now(UTC)
    )
    return EventRecord.of(
        event_id=uuid.UUID(event.id),
        type=event.type,
        account_id=uuid.UUID(event.account_id) if event.account_id else None,
        tenant_id=optional_uuid(event.tenant_id),
        actor_id=event.actor.principal_id,
        actor_kind=event.actor.kind,
        source_address=event.actor.source_address,
        correlation_id=event.correlation_id,
        occurred_at=occurred_at,
        payload=payload_of(event.payload),
    )
