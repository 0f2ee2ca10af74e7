"""Repositories over one AsyncSession: rows in, domain objects out."""

import uuid
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingestion.adapters.db.tables import dropzones, files, sftp_logins
from services.ingestion.domain.dropzones import DropZone, Route
from services.ingestion.domain.files import NOT_LOADED, FileStatus, IngestedFile, RowCounts
from services.ingestion.domain.logins import LoginCredentials, SftpLogin
from services.runtime.errors import AlreadyExists


def _constraint(error: IntegrityError) -> str:
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


class DropZones:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, zone: DropZone) -> None:
        try:
            await self.session.execute(
                dropzones.insert().values(
                    id=zone.id,
                    account_id=zone.account_id,
                    name=zone.name,
                    tenant_ids=list(zone.tenant_ids),
                    routes=[
                        {"pattern": r.pattern, "source_schema": r.source_schema}
                        for r in zone.routes
                    ],
                    created_at=zone.created_at,
                    updated_at=zone.updated_at,
                )
            )
        except IntegrityError as error:
            if _constraint(error) == "dropzones_name_key":
                raise AlreadyExists(f"a drop zone named {zone.name!r} already exists") from None
            raise

    async def get(self, account_id: uuid.UUID, dropzone_id: uuid.UUID) -> DropZone | None:
        row = (
            (
                await self.session.execute(
                    select(dropzones).where(
                        dropzones.c.account_id == account_id,
                        dropzones.c.id == dropzone_id,
                        dropzones.c.deleted_at.is_(None),
                    )
                )
            )
            .mappings()
            .first()
        )
        return _dropzone(row) if row else None

    async def page(
        self, account_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[DropZone]:
        query = (
            select(dropzones)
            .where(dropzones.c.account_id == account_id, dropzones.c.deleted_at.is_(None))
            .order_by(dropzones.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(dropzones.c.id > after)
        return [_dropzone(row) for row in (await self.session.execute(query)).mappings()]


class SftpLogins:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, login: SftpLogin, *, password_hash: str) -> None:
        try:
            await self.session.execute(
                sftp_logins.insert().values(
                    id=login.id,
                    account_id=login.account_id,
                    dropzone_id=login.dropzone_id,
                    username=login.username,
                    password_hash=password_hash,
                    created_at=login.created_at,
                    updated_at=login.created_at,
                )
            )
        except IntegrityError as error:
            if _constraint(error) == "sftp_logins_username_key":
                raise AlreadyExists(f"the username {login.username!r} is taken") from None
            raise

    async def credentials(self, username: str) -> LoginCredentials | None:
        """A login by username in any account, through the owner's SECURITY DEFINER function."""
        row = (
            (
                await self.session.execute(
                    text(
                        "SELECT id, account_id, dropzone_id, password_hash, disabled_at"
                        " FROM ingestion.find_sftp_login(:username)"
                    ),
                    {"username": username},
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return LoginCredentials(
            login_id=row["id"],
            account_id=row["account_id"],
            dropzone_id=row["dropzone_id"],
            password_hash=row["password_hash"],
            disabled=row["disabled_at"] is not None,
        )


class Files:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, file: IngestedFile) -> None:
        await self.session.execute(
            files.insert().values(
                id=file.id,
                account_id=file.account_id,
                dropzone_id=file.dropzone_id,
                name=file.name,
                size_bytes=file.size_bytes,
                sha256=file.sha256,
                storage_path=file.storage_path,
                status=file.status.value,
                status_reason=file.status_reason,
                duplicate_of=file.duplicate_of,
                source_schema=file.source_schema,
                received_at=file.received_at,
                updated_at=file.updated_at,
            )
        )

    async def get(
        self, account_id: uuid.UUID, file_id: uuid.UUID, *, for_update: bool = False
    ) -> IngestedFile | None:
        query = select(files).where(files.c.account_id == account_id, files.c.id == file_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        return _file(row) if row else None

    async def page(
        self,
        account_id: uuid.UUID,
        *,
        dropzone_id: uuid.UUID | None,
        before: uuid.UUID | None,
        limit: int,
    ) -> list[IngestedFile]:
        """Newest first (ids are UUIDv7, so they sort by arrival)."""
        query = (
            select(files)
            .where(files.c.account_id == account_id)
            .order_by(files.c.id.desc())
            .limit(limit)
        )
        if dropzone_id is not None:
            query = query.where(files.c.dropzone_id == dropzone_id)
        if before is not None:
            query = query.where(files.c.id < before)
        return [_file(row) for row in (await self.session.execute(query)).mappings()]

    async def lock_content(self, dropzone_id: uuid.UUID, sha256: str) -> None:
        """Serialise arrivals of the same content in one drop zone until the transaction ends."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"ingestion.files:{dropzone_id}:{sha256}"},
        )

    async def original_of(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, sha256: str
    ) -> uuid.UUID | None:
        """The earliest file of the drop zone with this content that was not set aside."""
        query = (
            select(files.c.id)
            .where(
                files.c.account_id == account_id,
                files.c.dropzone_id == dropzone_id,
                files.c.sha256 == sha256,
                files.c.status.not_in([s.value for s in NOT_LOADED]),
            )
            .order_by(files.c.id)
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def listing(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, *, limit: int
    ) -> list[IngestedFile]:
        """The newest file of each name in the drop zone, newest first."""
        ranked = select(
            files,
            func.row_number()
            .over(partition_by=files.c.name, order_by=files.c.id.desc())
            .label("rank"),
        ).where(files.c.account_id == account_id, files.c.dropzone_id == dropzone_id)
        newest = ranked.subquery()
        query = (
            select(*(newest.c[c.name] for c in files.columns))
            .where(newest.c.rank == 1)
            .order_by(newest.c.id.desc())
            .limit(limit)
        )
        return [_file(row) for row in (await self.session.execute(query)).mappings()]

    async def newest_named(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, name: str
    ) -> IngestedFile | None:
        query = (
            select(files)
            .where(
                files.c.account_id == account_id,
                files.c.dropzone_id == dropzone_id,
                files.c.name == name,
            )
            .order_by(files.c.id.desc())
            .limit(1)
        )
        row = (await self.session.execute(query)).mappings().first()
        return _file(row) if row else None

    async def set_status(
        self,
        file: IngestedFile,
        status: FileStatus,
        *,
        reason: str | None = None,
        rows: RowCounts | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "updated_at": func.now()}
        if reason is not None:
            values["status_reason"] = reason
        if rows is not None:
            values.update(
                rows_total=rows.total,
                rows_created=rows.created,
                rows_updated=rows.updated,
                rows_unchanged=rows.unchanged,
                rows_rejected=rows.rejected,
            )
        await self.session.execute(
            update(files)
            .where(files.c.account_id == file.account_id, files.c.id == file.id)
            .values(**values)
        )


def _dropzone(row: RowMapping) -> DropZone:
    return DropZone(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        tenant_ids=tuple(row["tenant_ids"]),
        routes=tuple(Route(r["pattern"], r["source_schema"]) for r in row["routes"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _file(row: RowMapping) -> IngestedFile:
    return IngestedFile(
        id=row["id"],
        account_id=row["account_id"],
        dropzone_id=row["dropzone_id"],
        name=row["name"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        storage_path=row["storage_path"],
        status=FileStatus(row["status"]),
        status_reason=row["status_reason"],
        duplicate_of=row["duplicate_of"],
        source_schema=row["source_schema"],
        rows=RowCounts(
            total=row["rows_total"],
            created=row["rows_created"],
            updated=row["rows_updated"],
            unchanged=row["rows_unchanged"],
            rejected=row["rows_rejected"],
        ),
        received_at=row["received_at"],
        updated_at=row["updated_at"],
    )


class Repositories:
    """The repositories of one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dropzones = DropZones(session)
        self.logins = SftpLogins(session)
        self.files = Files(session)
