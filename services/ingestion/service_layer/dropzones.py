"""Drop zones: creating, reading, limits and schedule, status, and lateness."""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from services.ingestion.adapters.db.repositories import Repositories, ZoneNumbers
from services.ingestion.adapters.events import builders
from services.ingestion.domain.dropzones import DropZone, Route, dropzone_spec
from services.ingestion.domain.limits import Quota
from services.ingestion.domain.schedule import ArrivalSchedule
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import CallContext, service_context
from services.runtime.db import Scope
from services.runtime.errors import Forbidden, InvalidInput, NotFound
from services.runtime.ids import new_id
from services.runtime.pages import Page, decode_token, page_size, paged

log = logging.getLogger(__name__)

# "Leave as it is" for an optional setting of update_dropzone.
UNCHANGED = object()


async def create_dropzone(
    *,
    ports: Ports,
    ctx: CallContext,
    name: str,
    tenant_ids: Sequence[uuid.UUID],
    routes: Sequence[Route],
) -> DropZone:
    account_id = ctx.require_account()
    spec = dropzone_spec(name=name, tenant_ids=tenant_ids, routes=routes)
    if ctx.tenant_ids is not None:
        outside = [t for t in spec.tenant_ids if t not in ctx.tenant_ids]
        if outside:
            raise Forbidden(f"tenant {outside[0]} is outside your tenant scope")
    unknown = await ports.tenants.unknown_tenants(
        account_id, spec.tenant_ids, correlation_id=ctx.correlation_id
    )
    if unknown:
        raise InvalidInput(f"unknown tenant: {', '.join(str(t) for t in unknown)}")
    now = datetime.now(UTC)
    zone = DropZone(
        id=new_id(),
        account_id=account_id,
        name=spec.name,
        tenant_ids=spec.tenant_ids,
        routes=spec.routes,
        created_at=now,
        updated_at=now,
    )
    async with ports.db.transaction(Scope.of(ctx)) as session:
        await Repositories(session).dropzones.add(zone)
        await ports.outbox.add(session, builders.dropzone_created(zone, ctx))
    return zone


async def list_dropzones(
    *, ports: Ports, ctx: CallContext, page_size_requested: int = 0, page_token: str = ""
) -> Page[DropZone]:
    account_id = ctx.require_account()
    size = page_size(page_size_requested)
    after = decode_token(page_token)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        rows = await Repositories(session).dropzones.page(
            account_id, after=after, limit=size + 1, visible=ctx.tenant_ids
        )
    return paged(rows, size, lambda zone: zone.id)


async def get_dropzone(*, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID) -> DropZone:
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        zone = await Repositories(session).dropzones.get(
            account_id, dropzone_id, visible=ctx.tenant_ids
        )
    if zone is None:
        raise NotFound(f"drop zone {dropzone_id} not found")
    return zone


async def update_dropzone(
    *,
    ports: Ports,
    ctx: CallContext,
    dropzone_id: uuid.UUID,
    quota_bytes: int | None | object = UNCHANGED,
    quota_files: int | None | object = UNCHANGED,
    schedule: ArrivalSchedule | None | object = UNCHANGED,
) -> DropZone:
    """Change a zone's quotas (None: no limit) and expected-arrival schedule (None: none).
    Windows that ended before a schedule is set are never reported late."""
    account_id = ctx.require_account()
    now = datetime.now(UTC)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        zone = await repos.dropzones.get(
            account_id, dropzone_id, visible=ctx.tenant_ids, for_update=True
        )
        if zone is None:
            raise NotFound(f"drop zone {dropzone_id} not found")
        quota = Quota(
            max_bytes=zone.quota.max_bytes if quota_bytes is UNCHANGED else quota_bytes,  # type: ignore[arg-type]
            max_files=zone.quota.max_files if quota_files is UNCHANGED else quota_files,  # type: ignore[arg-type]
        )
        changed = replace(zone, quota=quota, updated_at=now)
        if schedule is not UNCHANGED and schedule != zone.schedule:
            changed = replace(
                changed,
                schedule=schedule,  # type: ignore[arg-type]
                schedule_since=now if schedule is not None else None,
            )
        await repos.dropzones.update_settings(changed)
        await ports.outbox.add(session, builders.dropzone_updated(changed, ctx))
    return changed


@dataclass(frozen=True)
class ZoneStatus:
    zone: DropZone
    listener_up: bool
    numbers: ZoneNumbers
    missed_deadline: datetime | None
    next_deadline: datetime | None


async def dropzone_status(
    *, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID, now: datetime | None = None
) -> ZoneStatus:
    """The listener's state, what arrived last, what waits, load latency, and lateness."""
    account_id = ctx.require_account()
    now = now or datetime.now(UTC)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        zone = await repos.dropzones.get(account_id, dropzone_id, visible=ctx.tenant_ids)
        if zone is None:
            raise NotFound(f"drop zone {dropzone_id} not found")
        numbers = await repos.files.zone_numbers(account_id, zone.id)
    return ZoneStatus(
        zone=zone,
        listener_up=ports.listener.is_up(),
        numbers=numbers,
        missed_deadline=zone.missed_deadline(now, numbers.last_upload_at),
        next_deadline=zone.schedule.next_deadline(now) if zone.schedule else None,
    )


async def check_lateness(*, ports: Ports, now: datetime | None = None) -> int:
    """Report every scheduled zone that missed its latest window, once per window; returns
    how many were reported."""
    now = now or datetime.now(UTC)
    async with ports.db.transaction(Scope.nothing()) as session:
        scheduled = await Repositories(session).dropzones.scheduled()
    reported = 0
    for account_id, dropzone_id in scheduled:
        ctx = service_context("ingestion", account_id=account_id, permissions=())
        async with ports.db.transaction(Scope.account(account_id)) as session:
            repos = Repositories(session)
            zone = await repos.dropzones.get(account_id, dropzone_id)
            if zone is None:
                continue
            numbers = await repos.files.zone_numbers(account_id, zone.id)
            missed = zone.missed_deadline(now, numbers.last_upload_at)
            if missed is None or not await repos.dropzones.mark_late(zone, missed):
                continue
            await ports.outbox.add(
                session, builders.dropzone_late(zone, missed, numbers.last_upload_at, ctx)
            )
        reported += 1
        log.warning(
            "drop zone is late",
            extra={"fields": {"dropzone_id": str(dropzone_id), "deadline": missed.isoformat()}},
        )
    return reported
