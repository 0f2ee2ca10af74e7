"""Ingested files: listing, one file, its bytes for the services that load it, and loading
it again on an admin's request (reprocess, retry)."""

import logging
import uuid
from collections.abc import AsyncIterator

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.adapters.events import builders
from services.ingestion.domain.files import IngestedFile, reprocessed
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import NotFound, PreconditionFailed
from services.runtime.pages import Page, decode_token, page_size, paged

log = logging.getLogger(__name__)


async def list_files(
    *,
    ports: Ports,
    ctx: CallContext,
    dropzone_id: uuid.UUID | None = None,
    page_size_requested: int = 0,
    page_token: str = "",
) -> Page[IngestedFile]:
    """The account's files, newest first, optionally of one drop zone."""
    account_id = ctx.require_account()
    size = page_size(page_size_requested)
    before = decode_token(page_token)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        rows = await Repositories(session).files.page(
            account_id,
            dropzone_id=dropzone_id,
            before=before,
            limit=size + 1,
            visible=ctx.tenant_ids,
        )
    return paged(rows, size, lambda file: file.id)


async def get_file(*, ports: Ports, ctx: CallContext, file_id: uuid.UUID) -> IngestedFile:
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        file = await Repositories(session).files.get(account_id, file_id, visible=ctx.tenant_ids)
    if file is None:
        raise NotFound(f"file {file_id} not found")
    return file


async def load_again(
    *, ports: Ports, ctx: CallContext, file_id: uuid.UUID, retry: bool
) -> IngestedFile:
    """Announce the file for loading again (`reprocess=true`): any loaded, partially loaded,
    failed or duplicate file, or with `retry` a failed one. A duplicate loads its own bytes.
    The zone's current routes pick the source schema when one matches the name."""
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        file = await repos.files.get(account_id, file_id, for_update=True, visible=ctx.tenant_ids)
        if file is None:
            raise NotFound(f"file {file_id} not found")
        zone = await repos.dropzones.get(account_id, file.dropzone_id)
        if zone is None:
            raise NotFound(f"the drop zone of file {file_id} no longer exists")
        status = reprocessed(file.status, retry=retry)
        route = zone.route_for(file.name)
        schema = route.source_schema if route else file.source_schema
        if not schema:
            raise PreconditionFailed(f"no route of the drop zone matches {file.name!r}")
        await repos.files.set_status(file, status, reason="", source_schema=schema)
        again = await repos.files.get(account_id, file_id)
        assert again is not None
        await ports.outbox.add(session, builders.file_received(again, zone, ctx, reprocess=True))
    log.info(
        "file queued for loading again",
        extra={"fields": {"file_id": str(file_id), "retry": retry, "was": file.status.value}},
    )
    return again


async def file_content(
    *, ports: Ports, ctx: CallContext, file_id: uuid.UUID
) -> AsyncIterator[bytes]:
    """The file's bytes in chunks, for a caller of the file's own account."""
    file = await get_file(ports=ports, ctx=ctx, file_id=file_id)
    try:
        async for chunk in ports.store.read(file.storage_path):
            yield chunk
    except FileNotFoundError:
        log.error("stored file is missing", extra={"fields": {"file_id": str(file.id)}})
        raise PreconditionFailed(f"the content of file {file_id} is not available") from None
