"""IngestionService over gRPC: request to use case, result to proto, nothing else."""

from collections.abc import AsyncIterator

import grpc

from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.ingestion.adapters.contract import FILE_STATUS, timestamp
from services.ingestion.domain.dropzones import DropZone, Route
from services.ingestion.domain.files import IngestedFile
from services.ingestion.domain.logins import SftpLogin
from services.ingestion.domain.text import parse_id, parse_ids
from services.ingestion.service_layer import dropzones, files, logins
from services.ingestion.service_layer.ports import Ports
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
    )


def login_message(login: SftpLogin) -> ingestion_pb2.SftpLogin:
    return ingestion_pb2.SftpLogin(
        id=str(login.id),
        dropzone_id=str(login.dropzone_id),
        username=login.username,
        created_at=timestamp(login.created_at),
    )


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
    )
