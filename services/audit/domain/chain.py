"""The hash chain: each account's events in sequence, each hash covering its predecessor's.

`hash = sha256(prev_hash + canonical_json(content))`, with content the event's own facts and
its place in the chain. Changing, removing or reordering any stored event changes a hash or
breaks a link from that event on, and `verify_chain` names the first one.
"""

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.audit.domain.canonical import canonical_json, storable, storable_text

GENESIS_HASH = "0" * 64
# Events that belong to no account (a failed login by an unknown user) chain under this id.
PLATFORM_ACCOUNT_ID = uuid.UUID(int=0)


def chain_account(account_id: uuid.UUID | None) -> uuid.UUID:
    """The chain an event joins: its account's, or the platform's when it has none."""
    return account_id or PLATFORM_ACCOUNT_ID


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2026-11-21T09:30:00.000000Z (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class EventRecord:
    """What the audit log keeps of one event: who did what, when, from where, in which account."""

    event_id: uuid.UUID
    type: str
    account_id: uuid.UUID
    tenant_id: uuid.UUID | None
    actor_id: str
    actor_kind: str
    source_address: str
    correlation_id: str
    occurred_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        event_id: uuid.UUID,
        type: str,
        account_id: uuid.UUID | None,
        tenant_id: uuid.UUID | None,
        actor_id: str,
        actor_kind: str,
        source_address: str,
        correlation_id: str,
        occurred_at: datetime,
        payload: dict[str, Any],
    ) -> "EventRecord":
        """A record as the database keeps it, so what is hashed now is what is read back."""
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        return cls(
            event_id=event_id,
            type=storable_text(type),
            account_id=chain_account(account_id),
            tenant_id=tenant_id,
            actor_id=storable_text(actor_id),
            actor_kind=storable_text(actor_kind),
            source_address=storable_text(source_address),
            correlation_id=storable_text(correlation_id),
            occurred_at=occurred_at.astimezone(UTC),
            payload=storable(payload),
        )


@dataclass(frozen=True)
class AuditEvent:
    """An event recorded in its account's chain."""

    id: uuid.UUID
    sequence: int
    record: EventRecord
    prev_hash: str
    hash: str
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class ChainHead:
    """The last link of an account's chain: where the next event goes and what it links to."""

    account_id: uuid.UUID
    sequence: int = 0
    hash: str = GENESIS_HASH

    def append(self, record: EventRecord, *, id: uuid.UUID) -> AuditEvent:
        if record.account_id != self.account_id:
            raise ValueError("an event joins only its own account's chain")
        sequence = self.sequence + 1
        return AuditEvent(
            id=id,
            sequence=sequence,
            record=record,
            prev_hash=self.hash,
            hash=link_hash(self.hash, sequence, record),
        )

    def advanced_to(self, event: AuditEvent) -> "ChainHead":
        return ChainHead(self.account_id, event.sequence, event.hash)


def hashed_content(sequence: int, record: EventRecord) -> dict[str, Any]:
    return {
        "account_id": str(record.account_id),
        "sequence": sequence,
        "event_id": str(record.event_id),
        "type": record.type,
        "tenant_id": str(record.tenant_id) if record.tenant_id else None,
        "actor_id": record.actor_id,
        "actor_kind": record.actor_kind,
        "source_address": record.source_address,
        "correlation_id": record.correlation_id,
        "occurred_at": utc_iso(record.occurred_at),
        "payload": record.payload,
    }


def link_hash(prev_hash: str, sequence: int, record: EventRecord) -> str:
    content = canonical_json(hashed_content(sequence, record))
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verification:
    ok: bool
    events_checked: int
    first_bad_event_id: uuid.UUID | None = None
    reason: str = ""


class ChainVerifier:
    """Checks a chain one event at a time, in sequence order, so it never holds it all.

    Feed events with `check` until it returns False (the first bad event) or they run out,
    then call `result`. With a `head` (the account's recorded last link), events removed
    from the end and events beyond the head are found too.
    """

    def __init__(self, head: ChainHead | None = None) -> None:
        self.head = head
        self.checked = 0
        self._expected = 1
        self._prev_hash = GENESIS_HASH
        self._last: AuditEvent | None = None
        self._failure: Verification | None = None

    def check(self, event: AuditEvent) -> bool:
        if self._failure is not None:
            return False
        self.checked += 1
        reason = self._fault(event)
        if reason:
            self._failure = Verification(False, self.checked, event.id, reason)
            return False
        self._expected = event.sequence + 1
        self._prev_hash = event.hash
        self._last = event
        return True

    def _fault(self, event: AuditEvent) -> str:
        sequence, expected = event.sequence, self._expected
        if sequence > expected:
            missing = (
                f"event {expected}"
                if sequence == expected + 1
                else f"events {expected}..{sequence - 1}"
            )
            return f"chain broken: {missing} missing before {event.id}"
        if sequence < expected:
            return (
                f"chain broken: event {event.id} out of order"
                f" (sequence {sequence}, expected {expected})"
            )
        if link_hash(event.prev_hash, sequence, event.record) != event.hash:
            return "hash mismatch: content altered"
        if event.prev_hash != self._prev_hash:
            before = "the genesis" if sequence == 1 else f"event {sequence - 1}"
            return f"chain broken: event {event.id} does not link to {before}"
        if self.head is not None and sequence > self.head.sequence:
            return f"chain broken: event {event.id} is beyond the chain head ({self.head.sequence})"
        return ""

    def result(self) -> Verification:
        if self._failure is not None:
            return self._failure
        last_sequence = self._last.sequence if self._last else 0
        if self.head is not None and self.head.sequence > last_sequence:
            missing = (
                f"event {self.head.sequence}"
                if self.head.sequence == last_sequence + 1
                else f"events {last_sequence + 1}..{self.head.sequence}"
            )
            after = f"after {self._last.id}" if self._last else "from the start"
            reason = f"chain broken: {missing} missing {after}"
            return Verification(False, self.checked, None, reason)
        if self.head is not None and self._last is not None and self.head.hash != self._last.hash:
            reason = "chain head mismatch: the last event is not the one the head records"
            return Verification(False, self.checked, self._last.id, reason)
        return Verification(True, self.checked)


def verify_chain(events: Iterable[AuditEvent], *, head: ChainHead | None = None) -> Verification:
    """Verify `events` (one account's, in sequence order) and, given it, the recorded head."""
    verifier = ChainVerifier(head)
    for event in events:
        if not verifier.check(event):
            break
    return verifier.result()
