"""The events ingestion publishes, built from domain objects."""

import uuid

from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.adapters.contract import FILE_STATUS
from services.ingestion.domain.dropzones import DropZone
from services.ingestion.domain.files import FileStatus, IngestedFile
from services.ingestion.domain.logins import SftpLogin
from services.runtime.context import CallContext
from services.runtime.events import new_event

DROPZONE_CREATED = "canopy.ingestion.dropzone.created"
LOGIN_CREATED = "canopy.ingestion.login.created"
FILE_RECEIVED = "canopy.ingestion.file.received"
FILE_STATUS_CHANGED = "canopy.ingestion.file.status_changed"


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


def file_received(file: IngestedFile, zone: DropZone, ctx: CallContext) -> events_pb2.Event:
    payload = ingestion_pb2.FileReceived(
        file_id=str(file.id),
        dropzone_id=str(file.dropzone_id),
        name=file.name,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        source_schema=file.source_schema,
        tenant_ids=[str(t) for t in zone.tenant_ids],
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
