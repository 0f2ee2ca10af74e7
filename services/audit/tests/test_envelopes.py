"""Unit tests of reading envelopes and page tokens (no I/O)."""

import base64
import uuid

import pytest
from google.protobuf import any_pb2, timestamp_pb2

from canopy.ingestion.v1 import ingestion_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.audit.adapters.events.envelopes import record_of, register_contract_types
from services.audit.adapters.grpc.translate import payload_struct
from services.audit.domain.chain import PLATFORM_ACCOUNT_ID
from services.audit.service_layer.trail import (
    decode_page_token,
    encode_page_token,
    page_size_of,
)
from services.runtime.context import CallContext
from services.runtime.errors import InvalidInput
from services.runtime.events import new_event


def test_every_contract_module_is_registered() -> None:
    names = register_contract_types()
    for context in ("common", "identity", "tenancy", "ingestion", "canonical", "audit"):
        assert any(name.startswith(f"canopy.{context}.v1.") for name in names)


def test_a_known_payload_is_decoded_with_its_type_and_field_names() -> None:
    account, tenant = uuid.uuid4(), uuid.uuid4()
    ctx = CallContext(
        principal_id="user-7", principal_kind="user", account_id=account, source_address="10.0.0.9"
    )
    payload = ingestion_pb2.FileReceived(
        file_id="f1", dropzone_id="d1", name="customers.csv", size_bytes=1234, tenant_ids=["t1"]
    )
    event = new_event(
        "canopy.ingestion.file.received", payload, account_id=account, ctx=ctx, tenant_id=tenant
    )
    record = record_of(event)
    assert record.event_id == uuid.UUID(event.id)
    assert (record.account_id, record.tenant_id) == (account, tenant)
    assert (record.actor_id, record.actor_kind, record.source_address) == (
        "user-7",
        "user",
        "10.0.0.9",
    )
    assert record.correlation_id == ctx.correlation_id
    assert record.payload == {
        "@type": "type.googleapis.com/canopy.ingestion.v1.FileReceived",
        "file_id": "f1",
        "dropzone_id": "d1",
        "name": "customers.csv",
        "size_bytes": "1234",
        "tenant_ids": ["t1"],
    }


def test_an_unknown_payload_is_kept_as_type_and_bytes() -> None:
    event = new_event(
        "canopy.tenancy.account.created", tenancy_pb2.AccountCreated(), account_id=uuid.uuid4()
    )
    event.payload.CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/canopy.future.v9.Mystery", value=b"\x08\x96\x01")
    )
    assert record_of(event).payload == {
        "@type": "type.googleapis.com/canopy.future.v9.Mystery",
        "@value": base64.b64encode(b"\x08\x96\x01").decode(),
    }


def test_an_event_without_account_joins_the_platform_chain() -> None:
    event = new_event("canopy.identity.login.failed", timestamp_pb2.Timestamp(), account_id=None)
    assert record_of(event).account_id == PLATFORM_ACCOUNT_ID


def test_occurred_at_keeps_microseconds_and_drops_nanoseconds() -> None:
    event = new_event("canopy.identity.login.failed", timestamp_pb2.Timestamp(), account_id=None)
    event.occurred_at.FromNanoseconds(1_700_000_000_123_456_789)
    occurred = record_of(event).occurred_at
    assert occurred.microsecond == 123_456 and occurred.utcoffset().total_seconds() == 0


def test_payload_struct_shows_huge_integers_as_text() -> None:
    struct = payload_struct({"a": 1, "big": 10**400, "nested": [{"b": "x"}], "f": 0.5})
    assert struct["a"] == 1.0 and struct["big"] == str(10**400) and struct["f"] == 0.5
    assert struct["nested"][0]["b"] == "x"


def test_page_tokens_round_trip_and_foreign_tokens_are_refused() -> None:
    assert decode_page_token(encode_page_token(42)) == 42
    assert decode_page_token("") is None
    for bad in ("garbage!", base64.urlsafe_b64encode(b"seq:x").decode(), "c2VxOjA="):
        with pytest.raises(InvalidInput):
            decode_page_token(bad)


def test_page_size_defaults_to_50_and_is_capped_at_500() -> None:
    assert (page_size_of(0), page_size_of(7), page_size_of(10_000)) == (50, 7, 500)
    with pytest.raises(InvalidInput):
        page_size_of(-1)
