"""IngestionService over gRPC: request to use case, result to proto, nothing else."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc

from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.ingestion.adapters.contract import (
    FILE_STATUS,
    lockout_message,
    schedule_message,
    timestamp,
)
from services.ingestion.domain.dropzones import DropZone, Route
from services.ingestion.domain.files import IngestedFile
from services.ingestion.domain.logins import LoginKey, SftpLogin
from services.ingestion.domain.schedule import arrival_schedule
from services.ingestion.domain.text import parse_id, parse_ids
from services.ingestion.service_layer import dropzones, files, logins
from services.ingestion.service_layer.ports import Ports
from services.runtime.errors import InvalidInput
from services.runtime.grpc_server import context_of_call


class IngestionServicer(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, ports: Ports) -> None:
        self.ports = ports

    async def CreateDropZone(
        self, request: ingestion_pb2.CreateDropZoneRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.DropZone:
        zone = await dropzones.create_dropzone(
            ports=self.ports,
            ctx=context_of_call(),
            name=request.name,
            tenant_ids=parse_ids(request.tenant_ids, field="tenant_ids"),
            routes=[Route(r.pattern, r.source_schema) for r in request.routes],
        )
        return dropzone_message(zone)

    async def ListDropZones(
        self, request: ingestion_pb2.ListDropZonesRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.ListDropZonesResponse:
        page = await dropzones.list_dropzones(
            ports=self.ports,
            ctx=context_of_call(),
            page_size_requested=request.page_size,
            page_token=request.page_token,
        )
        return ingestion_pb2.ListDropZonesResponse(
            dropzones=[dropzone_message(z) for z in page.items], next_page_token=page.next_token
        )

    async def GetDropZone(
        self, request: ingestion_pb2.GetDropZoneRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.DropZone:
        zone = await dropzones.get_dropzone(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=parse_id(request.dropzone_id, field="dropzone_id"),
        )
        return dropzone_message(zone)

    async def CreateSftpLogin(
        self, request: ingestion_pb2.CreateSftpLoginRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.create_sftp_login(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=parse_id(request.dropzone_id, field="dropzone_id"),
            username=request.username,
            password=request.password,
        )
        return login_message(login)

    async def ListFiles(
        self, request: ingestion_pb2.ListFilesRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.ListFilesResponse:
        page = await files.list_files(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=(
                parse_id(request.dropzone_id, field="dropzone_id") if request.dropzone_id else None
            ),
            page_size_requested=request.page_size,
            page_token=request.page_token,
        )
        return ingestion_pb2.ListFilesResponse(
            files=[file_message(f) for f in page.items], next_page_token=page.next_token
        )

    async def GetFile(
        self, request: ingestion_pb2.GetFileRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.IngestedFile:
        file = await files.get_file(
            ports=self.ports,
            ctx=context_of_call(),
            file_id=parse_id(request.file_id, field="file_id"),
        )
        return file_message(file)

    async def ReadFileContent(
        self, request: ingestion_pb2.ReadFileContentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ingestion_pb2.FileChunk]:
        chunks = files.file_content(
            ports=self.ports,
            ctx=context_of_call(),
            file_id=parse_id(request.file_id, field="file_id"),
        )
        async for chunk in chunks:
            yield ingestion_pb2.FileChunk(data=chunk)

    async def UpdateDropZone(
        self, request: ingestion_pb2.UpdateDropZoneRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.DropZone:
        changes: dict[str, object] = {}
        if request.HasField("quota_bytes"):
            changes["quota_bytes"] = _limit(request.quota_bytes, "quota_bytes")
        if request.HasField("quota_files"):
            changes["quota_files"] = _limit(request.quota_files, "quota_files")
        if request.clear_schedule and request.HasField("schedule"):
            raise InvalidInput("give a schedule or clear_schedule, not both")
        if request.clear_schedule:
            changes["schedule"] = None
        elif request.HasField("schedule"):
            changes["schedule"] = arrival_schedule(
                request.schedule.expected_by, request.schedule.timezone
            )
        zone = await dropzones.update_dropzone(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=parse_id(request.dropzone_id, field="dropzone_id"),
            **changes,  # type: ignore[arg-type]
        )
        return dropzone_message(zone)

    async def GetDropZoneStatus(
        self, request: ingestion_pb2.GetDropZoneStatusRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.DropZoneStatus:
        status = await dropzones.dropzone_status(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=parse_id(request.dropzone_id, field="dropzone_id"),
        )
        numbers = status.numbers
        message = ingestion_pb2.DropZoneStatus(
            dropzone_id=str(status.zone.id),
            listener="up" if status.listener_up else "down",
            last_file_name=numbers.last_file_name,
            files_waiting=numbers.files_waiting,
            latency_p50_seconds=numbers.latency_p50_seconds or 0.0,
            latency_p95_seconds=numbers.latency_p95_seconds or 0.0,
            latency_sample_size=numbers.latency_sample_size,
            files_stored=numbers.files_stored,
            bytes_stored=numbers.bytes_stored,
            late=status.missed_deadline is not None,
        )
        if numbers.last_upload_at is not None:
            message.last_upload_at.CopyFrom(timestamp(numbers.last_upload_at))
        if numbers.last_file_status is not None:
            message.last_file_status = FILE_STATUS[numbers.last_file_status]
        if status.missed_deadline is not None:
            message.missed_deadline.CopyFrom(timestamp(status.missed_deadline))
        if status.next_deadline is not None:
            message.next_deadline.CopyFrom(timestamp(status.next_deadline))
        return message

    async def ListSftpLogins(
        self, request: ingestion_pb2.ListSftpLoginsRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.ListSftpLoginsResponse:
        found = await logins.list_logins(
            ports=self.ports,
            ctx=context_of_call(),
            dropzone_id=parse_id(request.dropzone_id, field="dropzone_id"),
        )
        return ingestion_pb2.ListSftpLoginsResponse(logins=[login_message(x) for x in found])

    async def GetSftpLogin(
        self, request: ingestion_pb2.GetSftpLoginRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.get_login(
            ports=self.ports, ctx=context_of_call(), login_id=_login_id(request)
        )
        return login_message(login)

    async def DisableSftpLogin(
        self, request: ingestion_pb2.LoginActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.disable_login(
            ports=self.ports, ctx=context_of_call(), login_id=_login_id(request)
        )
        return login_message(login)

    async def EnableSftpLogin(
        self, request: ingestion_pb2.LoginActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.enable_login(
            ports=self.ports, ctx=context_of_call(), login_id=_login_id(request)
        )
        return login_message(login)

    async def UnlockSftpLogin(
        self, request: ingestion_pb2.LoginActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.unlock_login(
            ports=self.ports, ctx=context_of_call(), login_id=_login_id(request)
        )
        return login_message(login)

    async def RotateSftpLoginPassword(
        self,
        request: ingestion_pb2.RotateSftpLoginPasswordRequest,
        context: grpc.aio.ServicerContext,
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.rotate_password(
            ports=self.ports,
            ctx=context_of_call(),
            login_id=_login_id(request),
            password=request.password,
        )
        return login_message(login)

    async def AddSftpLoginKey(
        self, request: ingestion_pb2.AddSftpLoginKeyRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLoginKey:
        key = await logins.add_key(
            ports=self.ports,
            ctx=context_of_call(),
            login_id=_login_id(request),
            public_key=request.public_key,
        )
        return key_message(key)

    async def RemoveSftpLoginKey(
        self, request: ingestion_pb2.RemoveSftpLoginKeyRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.SftpLogin:
        login = await logins.remove_key(
            ports=self.ports,
            ctx=context_of_call(),
            login_id=_login_id(request),
            key_id=parse_id(request.key_id, field="key_id"),
        )
        return login_message(login)

    async def PlanSftpLoginDeletion(
        self, request: ingestion_pb2.LoginActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.LoginDeletionPlan:
        plan = await logins.plan_deletion(
            ports=self.ports, ctx=context_of_call(), login_id=_login_id(request)
        )
        message = ingestion_pb2.LoginDeletionPlan(
            login_id=str(plan.login.id),
            username=plan.login.username,
            deletable=not plan.blockers,
            blockers=plan.blockers,
            removes=plan.removes,
            keeps=plan.keeps,
            confirmation_token=plan.token,
        )
        if plan.expires_at is not None:
            message.token_expires_at.CopyFrom(timestamp(plan.expires_at))
        return message

    async def DeleteSftpLogin(
        self, request: ingestion_pb2.DeleteSftpLoginRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.DeleteSftpLoginResponse:
        login = await logins.delete_login(
            ports=self.ports,
            ctx=context_of_call(),
            login_id=_login_id(request),
            confirmation=request.confirmation,
        )
        return ingestion_pb2.DeleteSftpLoginResponse(
            login_id=str(login.id), retired_username=login.username
        )

    async def ListLockouts(
        self, request: ingestion_pb2.ListLockoutsRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.ListLockoutsResponse:
        locked_logins, addresses = await logins.list_lockouts(
            ports=self.ports, ctx=context_of_call()
        )
        return ingestion_pb2.ListLockoutsResponse(
            lockouts=[
                *(lockout_message(kind="login", state=x.failures, login=x) for x in locked_logins),
                *(
                    lockout_message(
                        kind="address", state=a.state, login=None, source_address=a.address
                    )
                    for a in addresses
                ),
            ]
        )

    async def ReprocessFile(
        self, request: ingestion_pb2.FileActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.IngestedFile:
        file = await files.load_again(
            ports=self.ports,
            ctx=context_of_call(),
            file_id=parse_id(request.file_id, field="file_id"),
            retry=False,
        )
        return file_message(file)

    async def RetryFile(
        self, request: ingestion_pb2.FileActionRequest, context: grpc.aio.ServicerContext
    ) -> ingestion_pb2.IngestedFile:
        file = await files.load_again(
            ports=self.ports,
            ctx=context_of_call(),
            file_id=parse_id(request.file_id, field="file_id"),
            retry=True,
        )
        return file_message(file)


def _login_id(request: object) -> uuid.UUID:
    return parse_id(getattr(request, "login_id", ""), field="login_id")


def _limit(value: int, field: str) -> int | None:
    """0 means no limit."""
    if value < 0:
        raise InvalidInput(f"{field} must be positive (or 0 for no limit)")
    return value or None


def dropzone_message(zone: DropZone) -> ingestion_pb2.DropZone:
    return ingestion_pb2.DropZone(
        id=str(zone.id),
        account_id=str(zone.account_id),
        name=zone.name,
        tenant_ids=[str(t) for t in zone.tenant_ids],
        routes=[
            ingestion_pb2.Route(pattern=r.pattern, source_schema=r.source_schema)
            for r in zone.routes
        ],
        created_at=timestamp(zone.created_at),
        updated_at=timestamp(zone.updated_at),
        quota_bytes=zone.quota.max_bytes or 0,
        quota_files=zone.quota.max_files or 0,
        schedule=schedule_message(zone.schedule) if zone.schedule else None,
    )


def key_message(key: LoginKey) -> ingestion_pb2.SftpLoginKey:
    return ingestion_pb2.SftpLoginKey(
        id=str(key.id),
        algorithm=key.algorithm,
        fingerprint=key.fingerprint,
        comment=key.comment,
        created_at=timestamp(key.created_at),
    )


def login_message(login: SftpLogin) -> ingestion_pb2.SftpLogin:
    message = ingestion_pb2.SftpLogin(
        id=str(login.id),
        dropzone_id=str(login.dropzone_id),
        username=login.username,
        created_at=timestamp(login.created_at),
        disabled=login.disabled_at is not None,
        keys=[key_message(k) for k in login.keys],
        failed_attempts=login.failures.failed_attempts,
    )
    if login.updated_at is not None:
        message.updated_at.CopyFrom(timestamp(login.updated_at))
    if login.disabled_at is not None:
        message.disabled_at.CopyFrom(timestamp(login.disabled_at))
    if login.failures.is_locked(datetime.now(UTC)):
        message.lockout.CopyFrom(lockout_message(kind="login", state=login.failures, login=login))
    return message


def file_message(file: IngestedFile) -> ingestion_pb2.IngestedFile:
    return ingestion_pb2.IngestedFile(
        id=str(file.id),
        dropzone_id=str(file.dropzone_id),
        name=file.name,
        size_bytes=file.size_bytes,
        sha256=file.sha256,
        status=FILE_STATUS[file.status],
        duplicate_of=str(file.duplicate_of) if file.duplicate_of else "",
        source_schema=file.source_schema,
        status_reason=file.status_reason,
        rows_total=file.rows.total,
        rows_created=file.rows.created,
        rows_updated=file.rows.updated,
        rows_unchanged=file.rows.unchanged,
        rows_rejected=file.rows.rejected,
        received_at=timestamp(file.received_at),
        updated_at=timestamp(file.updated_at),
        login_id=str(file.login_id) if file.login_id else "",
        completed_at=timestamp(file.completed_at) if file.completed_at else None,
    )
