"""Unit tests of the hash chain and its verification (no I/O)."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.audit.domain.chain import (
    GENESIS_HASH,
    PLATFORM_ACCOUNT_ID,
    AuditEvent,
    ChainHead,
    EventRecord,
    link_hash,
    utc_iso,
    verify_chain,
)

ACCOUNT = uuid.UUID("0196a1c2-0000-7000-8000-000000000001")
T0 = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def record(n: int, **payload: object) -> EventRecord:
    return EventRecord.of(
        event_id=uuid.uuid4(),
        type="canopy.ingestion.file.received",
        account_id=ACCOUNT,
        tenant_id=None,
        actor_id="user-1",
        actor_kind="user",
        source_address="203.0.113.7",
        correlation_id=f"cid-{n}",
        occurred_at=T0 + timedelta(seconds=n),
        payload={"n": n, **payload},
    )


def chain(length: int) -> tuple[list[AuditEvent], ChainHead]:
    head = ChainHead(ACCOUNT)
    events = []
    for n in range(1, length + 1):
        event = head.append(record(n), id=uuid.uuid4())
        events.append(event)
        head = head.advanced_to(event)
    return events, head


def altered(event: AuditEvent, **changes: object) -> AuditEvent:
    return dataclasses.replace(event, record=dataclasses.replace(event.record, **changes))


def test_a_chain_links_every_event_to_the_one_before() -> None:
    events, head = chain(3)
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
    assert head == ChainHead(ACCOUNT, 3, events[2].hash)
    assert all(len(e.hash) == 64 for e in events)


def test_an_intact_chain_verifies() -> None:
    events, head = chain(5)
    result = verify_chain(events, head=head)
    assert result.ok and result.events_checked == 5
    assert result.first_bad_event_id is None and result.reason == ""


def test_an_empty_chain_verifies() -> None:
    assert verify_chain([], head=ChainHead(ACCOUNT)).ok
    assert verify_chain([]).ok


def test_altered_payload_is_named() -> None:
    events, head = chain(5)
    events[2] = altered(events[2], payload={"n": 999})
    result = verify_chain(events, head=head)
    assert not result.ok
    assert result.first_bad_event_id == events[2].id
    assert result.reason == "hash mismatch: content altered"
    assert result.events_checked == 3


@pytest.mark.parametrize(
    "field, value",
    [
        ("type", "canopy.tenancy.account.closed"),
        ("actor_id", "someone-else"),
        ("actor_kind", "service"),
        ("source_address", "198.51.100.1"),
        ("correlation_id", "other"),
        ("tenant_id", uuid.uuid4()),
        ("event_id", uuid.uuid4()),
        ("occurred_at", T0 + timedelta(microseconds=1)),
        ("account_id", uuid.uuid4()),
    ],
)
def test_every_recorded_fact_is_covered_by_the_hash(field: str, value: object) -> None:
    events, head = chain(3)
    events[1] = altered(events[1], **{field: value})
    result = verify_chain(events, head=head)
    assert (result.ok, result.first_bad_event_id) == (False, events[1].id)


def test_altered_stored_hash_is_named() -> None:
    events, head = chain(3)
    events[1] = dataclasses.replace(events[1], hash="f" * 64)
    result = verify_chain(events, head=head)
    assert (result.first_bad_event_id, result.reason) == (
        events[1].id,
        "hash mismatch: content altered",
    )


def test_removed_event_is_named_by_the_one_after_the_gap() -> None:
    events, head = chain(5)
    removed = events.pop(2)
    result = verify_chain(events, head=head)
    assert not result.ok
    assert removed.sequence == 3
    assert result.first_bad_event_id == events[2].id
    assert result.reason == f"chain broken: event 3 missing before {events[2].id}"


def test_several_removed_events_are_reported_as_a_range() -> None:
    events, head = chain(6)
    del events[1:4]
    result = verify_chain(events, head=head)
    assert result.reason == f"chain broken: events 2..4 missing before {events[1].id}"


def test_removed_first_event_is_detected() -> None:
    events, head = chain(3)
    result = verify_chain(events[1:], head=head)
    assert result.first_bad_event_id == events[1].id
    assert result.reason.startswith("chain broken: event 1 missing")


def test_removed_last_events_are_detected_against_the_head() -> None:
    events, head = chain(5)
    result = verify_chain(events[:3], head=head)
    assert not result.ok and result.first_bad_event_id is None
    assert result.reason == f"chain broken: events 4..5 missing after {events[2].id}"
    assert verify_chain(events[:4], head=head).reason.startswith("chain broken: event 5 missing")


def test_reordered_events_are_detected() -> None:
    events, head = chain(4)
    swapped = [events[0], events[2], events[1], events[3]]
    result = verify_chain(swapped, head=head)
    assert not result.ok
    assert result.first_bad_event_id == events[2].id


def test_renumbered_events_are_detected() -> None:
    """Swapping two events' places, sequence numbers and links included, breaks their hashes."""
    events, head = chain(4)
    first, second = events[1], events[2]
    events[1] = dataclasses.replace(second, sequence=2, prev_hash=first.prev_hash)
    events[2] = dataclasses.replace(first, sequence=3, prev_hash=second.prev_hash)
    result = verify_chain(events, head=head)
    assert (result.first_bad_event_id, result.reason) == (
        second.id,
        "hash mismatch: content altered",
    )


def test_an_event_rewritten_with_a_fresh_hash_breaks_the_next_link() -> None:
    events, head = chain(4)
    forged_record = dataclasses.replace(events[1].record, payload={"n": "forged"})
    events[1] = dataclasses.replace(
        events[1],
        record=forged_record,
        hash=link_hash(events[1].prev_hash, 2, forged_record),
    )
    result = verify_chain(events, head=head)
    assert result.first_bad_event_id == events[2].id
    assert result.reason == f"chain broken: event {events[2].id} does not link to event 2"


def test_a_head_that_does_not_match_the_last_event_is_detected() -> None:
    events, head = chain(3)
    result = verify_chain(events, head=dataclasses.replace(head, hash="a" * 64))
    assert (result.ok, result.first_bad_event_id) == (False, events[2].id)
    assert result.reason.startswith("chain head mismatch")


def test_events_beyond_a_missing_head_are_detected() -> None:
    events, _ = chain(2)
    result = verify_chain(events, head=ChainHead(ACCOUNT))
    assert (result.ok, result.first_bad_event_id) == (False, events[0].id)


def test_hash_does_not_depend_on_payload_key_order_or_number_spelling() -> None:
    base = record(1)
    a = dataclasses.replace(base, payload={"b": {"y": 1.0, "x": [1e2, "é"]}, "a": 0.1})
    b = dataclasses.replace(base, payload={"a": 0.1, "b": {"x": [100, "é"], "y": 1}})
    assert link_hash(GENESIS_HASH, 1, a) == link_hash(GENESIS_HASH, 1, b)
    c = dataclasses.replace(base, payload={"a": 0.1, "b": {"x": [100, "e"], "y": 1}})
    assert link_hash(GENESIS_HASH, 1, a) != link_hash(GENESIS_HASH, 1, c)


def test_an_event_joins_only_its_own_accounts_chain() -> None:
    with pytest.raises(ValueError):
        ChainHead(uuid.uuid4()).append(record(1), id=uuid.uuid4())


def test_events_without_an_account_join_the_platform_chain() -> None:
    made = EventRecord.of(**{**dataclasses.asdict(record(1)), "account_id": None})
    assert made.account_id == PLATFORM_ACCOUNT_ID == uuid.UUID(int=0)


def test_times_are_hashed_in_utc_with_microseconds() -> None:
    local = datetime(2026, 11, 21, 10, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert utc_iso(local) == "2026-11-21T09:30:00.000005Z"
    assert utc_iso(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"
