"""What an SFTP login does in its drop zone: finish uploads within the zone's limits, and see
what it uploaded and what the platform wrote back."""

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime

from services.ingestion.adapters.db.repositories import Repositories, ZoneDocument
from services.ingestion.adapters.events import builders
from services.ingestion.domain.files import IngestedFile, check_upload, file_arrived
from services.ingestion.domain.limits import UploadLimits
from services.ingestion.domain.logins import SftpSession
from services.ingestion.domain.paths import Folder
from services.ingestion.service_layer.ports import FinishedUpload, Ports
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import NotFound
from services.runtime.ids import new_id

log = logging.getLogger(__name__)

# The listing an SFTP client sees is a view of the latest files, not an archive.
LISTING_LIMIT = 1000


def context_of(session: SftpSession) -> CallContext:
    """The actor of what a login does: kind "sftp_login", from the client's address."""
    return CallContext(
        principal_id=str(session.login_id),
        principal_kind="sftp_login",
        account_id=session.account_id,
        source_address=session.source_address,
    )


def scope_of(session: SftpSession) -> Scope:
    return Scope(session.account_id, principal_id=str(session.login_id))


async def upload_limits(*, ports: Ports, session: SftpSession) -> UploadLimits:
    """What an upload may grow to now: the tier's file size and what the zone's quota leaves."""
    async with ports.db.transaction(scope_of(session)) as tx:
        repos = Repositories(tx)
        found = await repos.dropzones.with_tier(session.account_id, session.dropzone_id)
        if found is None:
            raise NotFound("the drop zone no longer exists")
        zone, tier, usage = found
        tier = tier or ports.policies.default_tier
    return UploadLimits(
        tier=tier,
        max_file_bytes=ports.policies.max_file_bytes[tier],
        quota=zone.quota,
        usage=usage,
    )


async def receive_upload(
    *, ports: Ports, session: SftpSession, name: str, upload: FinishedUpload
) -> tuple[IngestedFile, UploadLimits]:
    """Keep a closed upload in its drop zone's store and record it: received (with its
    route's source schema), duplicate (same content as an earlier file of the zone) or
    quarantined (no route matches its name). An empty upload, or one past the zone's quota
    or the tier's file size, is discarded and refused: nothing of it is kept. Also returns
    the zone's limits as of this commit, the file included."""
    try:
        check_upload(name=name, size_bytes=upload.size_bytes)
    except Exception:
        await ports.store.discard(upload)
        raise
    ctx = context_of(session)
    file_id = new_id()
    # Moving the file into the store and flushing it runs while the zone is locked and read;
    # the file is durable before the transaction that records it commits.
    keeping = asyncio.ensure_future(
        ports.store.keep(
            upload, account_id=session.account_id, dropzone_id=session.dropzone_id, file_id=file_id
        )
    )
    try:
        async with ports.db.transaction(scope_of(session)) as tx:
            repos = Repositories(tx)
            # Locking the zone serialises every commit into it (this is the only place files
            # are added), so two uploads cannot both fit the last of a quota, nor both be the
            # original of the same content: what the zone holds comes with the locked row, and
            # the original is read after the lock, so both include every commit before this.
            locked = await repos.dropzones.with_tier(
                session.account_id, session.dropzone_id, for_update=True
            )
            if locked is None:
                raise NotFound("the drop zone no longer exists")
            zone, tier, usage = locked
            tier = tier or ports.policies.default_tier
            original = await repos.files.original_of(zone.account_id, zone.id, upload.sha256)
            limits = UploadLimits(
                tier=tier,
                max_file_bytes=ports.policies.max_file_bytes[tier],
                quota=zone.quota,
                usage=usage,
            )
            limits.check_upload(upload.size_bytes)
            storage_path = await keeping
            arrival = file_arrived(name=name, routes=zone.routes, original=original)
            now = datetime.now(UTC)
            file = IngestedFile(
                id=file_id,
                account_id=zone.account_id,
                dropzone_id=zone.id,
                name=name,
                size_bytes=upload.size_bytes,
                sha256=upload.sha256,
                storage_path=storage_path,
                status=arrival.status,
                status_reason=arrival.reason,
                duplicate_of=arrival.duplicate_of,
                source_schema=arrival.source_schema,
                received_at=now,
                updated_at=now,
                login_id=session.login_id,
            )
            await repos.files.add(file)
            await ports.outbox.add(tx, builders.file_arrived(file, zone, ctx))
    except BaseException:
        await asyncio.shield(_undo_keep(ports, upload, keeping))
        raise
    log.info(
        "file received",
        extra={
            "fields": {
                "file_id": str(file.id),
                "dropzone_id": str(file.dropzone_id),
                "status": file.status.value,
                "size_bytes": file.size_bytes,
            }
        },
    )
    return file, limits.after(file.size_bytes)


async def _undo_keep(ports: Ports, upload: FinishedUpload, keeping: Awaitable[str]) -> None:
    """Remove the bytes of an upload that was not recorded, kept in the store or not."""
    try:
        storage_path = await keeping
    except Exception:
        await ports.store.discard(upload)
        return
    await ports.store.remove(storage_path)


async def zone_listing(*, ports: Ports, session: SftpSession) -> list[IngestedFile]:
    """The newest file of each name the zone received, newest first (`incoming/`)."""
    async with ports.db.transaction(scope_of(session)) as tx:
        return await Repositories(tx).files.listing(
            session.account_id, session.dropzone_id, limit=LISTING_LIMIT
        )


async def zone_file(*, ports: Ports, session: SftpSession, name: str) -> IngestedFile | None:
    async with ports.db.transaction(scope_of(session)) as tx:
        return await Repositories(tx).files.newest_named(
            session.account_id, session.dropzone_id, name
        )


async def document_listing(
    *, ports: Ports, session: SftpSession, folder: Folder
) -> list[ZoneDocument]:
    """The newest receipt or reject file of each name, newest first."""
    async with ports.db.transaction(scope_of(session)) as tx:
        return await Repositories(tx).documents.listing(
            session.account_id, session.dropzone_id, folder, limit=LISTING_LIMIT
        )


async def zone_document(
    *, ports: Ports, session: SftpSession, folder: Folder, name: str
) -> ZoneDocument | None:
    async with ports.db.transaction(scope_of(session)) as tx:
        return await Repositories(tx).documents.newest_named(
            session.account_id, session.dropzone_id, folder, name
        )
