"""The audit trail's use cases: record an event in its chain, list events, verify a chain."""

import base64
import binascii
import logging
from contextlib import aclosing
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.domain.chain import (
    AuditEvent,
    ChainHead,
    ChainVerifier,
    EventRecord,
    Verification,
)
from services.audit.service_layer.ports import AuditLogFactory
from services.runtime.context import CallContext
from services.runtime.db import Database, Scope
from services.runtime.errors import InvalidInput
from services.runtime.ids import new_id

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
TOKEN_PREFIX = "seq:"


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    next_page_token: str


def page_size_of(requested: int) -> int:
    if requested < 0:
        raise InvalidInput("page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{TOKEN_PREFIX}{sequence}".encode()).decode()


def decode_page_token(token: str) -> int | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
        if not text.startswith(TOKEN_PREFIX):
            raise ValueError(text)
        sequence = int(text[len(TOKEN_PREFIX) :])
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidInput("page_token is not one this service issued") from error
    if sequence < 1:
        raise InvalidInput("page_token is not one this service issued")
    return sequence


class AuditTrail:
    """Use cases over the audit log; transactions come from `db`, storage from `audit_log`."""

    def __init__(
        self, *, db: Database, audit_log: AuditLogFactory, verify_batch_size: int = 500
    ) -> None:
        self.db = db
        self.audit_log = audit_log
        self.verify_batch_size = verify_batch_size

    async def record(self, session: AsyncSession, *, record: EventRecord) -> AuditEvent | None:
        """Append `record` to its account's chain in the caller's transaction (scoped to that
        account); None when its event id is already recorded (a redelivery or a republish)."""
        audit_log = self.audit_log(session)
        head = await audit_log.lock_head(record.account_id)
        event = head.append(record, id=new_id())
        if not await audit_log.add(event):
            return None
        await audit_log.move_head(head.advanced_to(event))
        return event

    async def list_events(
        self, *, ctx: CallContext, page_size: int, page_token: str, event_type: str
    ) -> EventPage:
        """The caller's account's events (only its tenants' if it is tenant-scoped), newest
        first."""
        account_id = ctx.require_account()
        limit = page_size_of(page_size)
        before = decode_page_token(page_token)
        async with self.db.transaction(Scope.of(ctx)) as session:
            events = await self.audit_log(session).newest_first(
                account_id,
                before_sequence=before,
                limit=limit + 1,
                event_type=event_type.strip() or None,
                tenant_ids=ctx.tenant_ids,
            )
        more = len(events) > limit
        events = events[:limit]
        return EventPage(events, encode_page_token(events[-1].sequence) if more else "")

    async def verify_chain(self, *, ctx: CallContext) -> Verification:
        """Recompute the caller's account's chain up to its recorded head, in batches."""
        account_id = ctx.require_account()
        async with self.db.transaction(Scope.account(account_id)) as session:
            audit_log = self.audit_log(session)
            head = await audit_log.head(account_id)
            # Without a recorded head every event is "beyond" the genesis: a removed head shows.
            verifier = ChainVerifier(head or ChainHead(account_id))
            batches = audit_log.in_sequence(
                account_id,
                up_to=head.sequence if head else None,
                batch_size=self.verify_batch_size,
            )
            async with aclosing(batches):
                async for batch in batches:
                    if not all(verifier.check(event) for event in batch):
                        break
            result = verifier.result()
        fields = {
            "account_id": str(account_id),
            "ok": result.ok,
            "events_checked": result.events_checked,
            "first_bad_event_id": str(result.first_bad_event_id or ""),
            "reason": result.reason,
        }
        if result.ok:
            log.info("audit chain verified", extra={"fields": fields})
        else:
            log.warning("audit chain verification failed", extra={"fields": fields})
        return result
