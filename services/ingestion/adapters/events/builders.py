"""The events ingestion publishes, built from domain objects."""

import uuid
from datetime import datetime

from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.adapters.contract import (
    FILE_STATUS,
    lockout_message,
    schedule_message,
    timestamp,
)
from services.ingestion.domain.dropzones import DropZone
from services.ingestion.domain.files import FileStatus, IngestedFile
from services.ingestion.domain.lockouts import FailureState
from services.ingestion.domain.logins import SftpLogin
from services.runtime.context import CallContext
from services.runtime.events import new_event

DROPZONE_CREATED = "canopy.ingestion.dropzone.created"
DROPZONE_UPDATED = "canopy.ingestion.dropzone.updated"
DROPZONE_LATE = "canopy.ingestion.dropzone.late"
LOGIN_CREATED = "canopy.ingestion.login.created"
LOGIN_FAILED = "canopy.ingestion.login.failed"
LOGIN_LOCKED = "canopy.ingestion.login.locked"
FILE_RECEIVED = "canopy.ingestion.file.received"
FILE_STATUS_CHANGED = "canopy.ingestion.file.status_changed"
RECEIPT_WRITTEN = "canopy.ingestion.receipt.written"
# Verbs of canopy.ingestion.login.<verb> carrying SftpLoginChanged.
LOGIN_CHANGES = frozenset(
    {"disabled", "enabled", "unlocked", "password_rotated", "key_added", "key_removed", "deleted"}
)


def dropzone_created(zone: DropZone, ctx: CallContext) -> events_pb2.Event:
    payload = ingestion_pb2.DropZoneCreated(
        dropzone_id=str(zone.id), name=zone.name, tenant_ids=[str(t) for t in zone.tenant_ids]
    )
    return new_event(DROPZONE_CREATED, payload, account_id=zone.account_id, ctx=ctx)


def login_created(login: SftpLogin, ctx: CallContext) -> events_pb2.Event:
    payload = ingestion_pb2.SftpLoginCreated(
        login_id=str(login.id), dropzone_id=str(login.dropzone_id), username=login.username
    )
    return new_event(LOGIN_CREATED, payload, account_id=login.account_id, ctx=ctx)


def dropzone_updated(zone: DropZone, ctx: CallContext) -> events_pb2.Event:
    payload = ingestion_pb2.DropZoneUpdated(
        dropzone_id=str(zone.id),
        quota_bytes=zone.quota.max_bytes or 0,
        quota_files=zone.quota.max_files or 0,
    )
    if zone.schedule is not None:
        payload.schedule.CopyFrom(schedule_message(zone.schedule))
    return new_event(DROPZONE_UPDATED, payload, account_id=zone.account_id, ctx=ctx)


def dropzone_late(
    zone: DropZone, deadline: datetime, last_upload_at: datetime | None, ctx: CallContext
) -> events_pb2.Event:
    payload = ingestion_pb2.DropZoneLate(
        dropzone_id=str(zone.id), name=zone.name, deadline=timestamp(deadline)
    )
    if zone.schedule is not None:
        payload.schedule.CopyFrom(schedule_message(zone.schedule))
    if last_upload_at is not None:
        payload.last_upload_at.CopyFrom(timestamp(last_upload_at))
    return new_event(DROPZONE_LATE, payload, account_id=zone.account_id, ctx=ctx)


def login_changed(
    verb: str, login: SftpLogin, ctx: CallContext, *, key_fingerprint: str = ""
) -> events_pb2.Event:
    if verb not in LOGIN_CHANGES:
        raise ValueError(f"not a login change: {verb}")
    payload = ingestion_pb2.SftpLoginChanged(
        login_id=str(login.id),
        dropzone_id=str(login.dropzone_id),
        username=login.username,
        key_fingerprint=key_fingerprint,
    )
    return new_event(
        f"canopy.ingestion.login.{verb}", payload, account_id=login.account_id, ctx=ctx
    )


def login_failed(
    login: SftpLogin, *, reason: str, failed_attempts: int, ctx: CallContext
) -> events_pb2.Event:
    payload = ingestion_pb2.SftpLoginFailed(
        login_id=str(login.id),
        username=login.username,
        source_address=ctx.source_address,
        reason=reason,
        failed_attempts=failed_attempts,
    )
    return new_event(LOGIN_FAILED, payload, account_id=login.account_id, ctx=ctx)


def login_locked(
    *,
    kind: str,
    state: FailureState,
    login: SftpLogin | None,
    source_address: str,
    ctx: CallContext,
) -> events_pb2.Event:
    payload = ingestion_pb2.SftpLoginLocked(
        lockout=lockout_message(kind=kind, state=state, login=login, source_address=source_address)
    )
    return new_event(LOGIN_LOCKED, payload, account_id=login.account_id if login else None, ctx=ctx)


def receipt_written(
    file: IngestedFile, *, receipt_name: str, rejects_name: str, ctx: CallContext
) -> events_pb2.Event:
    payload = ingestion_pb2.ReceiptWritten(
        file_id=str(file.id),
        dropzone_id=str(file.dropzone_id),
        receipt_name=receipt_name,
        rejects_name=rejects_name,
    )
    return new_event(RECEIPT_WRITTEN, payload, account_id=file.account_id, ctx=ctx)


def file_received(
    file: IngestedFile, zone: DropZone, ctx: CallContext, *, reprocess: bool = False
) -> events_pb2.Event:
    payload = ingestion_pb2.FileReceived(
        file_id=str(file.id),
        dropzone_id=str(file.dropzone_id),
        name=file.name,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        source_schema=file.source_schema,
        tenant_ids=[str(t) for t in zone.tenant_ids],
        reprocess=reprocess,
    )
    return new_event(FILE_RECEIVED, payload, account_id=file.account_id, ctx=ctx)


def file_status_changed(
    *,
    account_id: uuid.UUID,
    file_id: uuid.UUID,
    status: FileStatus,
    reason: str = "",
    duplicate_of: uuid.UUID | None = None,
    ctx: CallContext,
) -> events_pb2.Event:
    payload = ingestion_pb2.FileStatusChanged(
        file_id=str(file_id),
        status=FILE_STATUS[status],
        reason=reason,
        duplicate_of=str(duplicate_of) if duplicate_of else "",
    )
    return new_event(FILE_STATUS_CHANGED, payload, account_id=account_id, ctx=ctx)


def file_arrived(file: IngestedFile, zone: DropZone, ctx: CallContext) -> events_pb2.Event:
    """A received file is announced for loading; any other arrival is a status change."""
    if file.status is FileStatus.RECEIVED:
        return file_received(file, zone, ctx)
    return file_status_changed(
        account_id=file.account_id,
        file_id=file.id,
        status=file.status,
        reason=file.status_reason,
        duplicate_of=file.duplicate_of,
        ctx=ctx,
    )
