"""Reading ingested files: listing, one file, and its bytes for the services that load it."""

import logging
import uuid
from collections.abc import AsyncIterator

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.domain.files import IngestedFile
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
            account_id, dropzone_id=dropzone_id, before=before, limit=size + 1
        )
    return paged(rows, size, lambda file: file.id)


async def get_file(*, ports: Ports, ctx: CallContext, file_id: uuid.UUID) -> IngestedFile:
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        file = await Repositories(session).files.get(account_id, file_id)
    if file is None:
        raise NotFound(f"file {file_id} not found")
    return file


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
