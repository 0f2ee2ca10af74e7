"""Following canonical's loads: a file is processing, then loaded, partially loaded or not;
and each account's tier, from tenancy's account events."""

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.adapters.events import builders
from services.ingestion.domain.files import RowCounts, load_completed, load_outcome, load_started
from services.ingestion.domain.limits import parse_tier
from services.runtime.context import CallContext
from services.runtime.outbox import Outbox

log = logging.getLogger(__name__)


async def mark_load_started(
    *,
    session: AsyncSession,
    outbox: Outbox,
    ctx: CallContext,
    account_id: uuid.UUID,
    file_id: uuid.UUID,
) -> None:
    files = Repositories(session).files
    file = await files.get(account_id, file_id, for_update=True)
    if file is None:
        log.warning("load started for an unknown file", extra={"fields": {"file_id": str(file_id)}})
        return
    status = load_started(file.status)
    if status is None:
        log.info(
            "load start ignored",
            extra={"fields": {"file_id": str(file_id), "status": file.status.value}},
        )
        return
    await files.set_status(file, status, reason="")
    await outbox.add(
        session,
        builders.file_status_changed(
            account_id=file.account_id, file_id=file.id, status=status, ctx=ctx
        ),
    )


async def mark_load_completed(
    *,
    session: AsyncSession,
    outbox: Outbox,
    ctx: CallContext,
    account_id: uuid.UUID,
    file_id: uuid.UUID,
    status: str,
    reason: str,
    rows: RowCounts,
) -> None:
    outcome = load_outcome(status)
    files = Repositories(session).files
    file = await files.get(account_id, file_id, for_update=True)
    if file is None:
        log.warning(
            "load completed for an unknown file", extra={"fields": {"file_id": str(file_id)}}
        )
        return
    new_status = load_completed(file.status, outcome)
    if new_status is None:
        log.info(
            "load completion ignored",
            extra={"fields": {"file_id": str(file_id), "status": file.status.value}},
        )
        return
    await files.set_status(file, new_status, reason=reason, rows=rows, completed=True)
    await outbox.add(
        session,
        builders.file_status_changed(
            account_id=file.account_id,
            file_id=file.id,
            status=new_status,
            reason=reason,
            ctx=ctx,
        ),
    )


async def record_tier(*, session: AsyncSession, account_id: uuid.UUID, tier: str) -> None:
    """Remember the account's tier (an empty tier is tenancy's default, standard)."""
    await Repositories(session).tiers.set(account_id, parse_tier(tier or "standard"))
