"""Repositories over one AsyncSession: rows in, domain objects out."""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.ingestion.adapters.db.tables import (
    account_tiers,
    address_lockouts,
    dropzones,
    files,
    sftp_login_keys,
    sftp_logins,
    zone_documents,
)
from services.ingestion.domain.dropzones import DropZone, Route
from services.ingestion.domain.files import (
    NOT_LOADED,
    WAITING,
    FileStatus,
    IngestedFile,
    RowCounts,
)
from services.ingestion.domain.limits import Quota, Tier, Usage
from services.ingestion.domain.lockouts import FailureState
from services.ingestion.domain.logins import LoginCredentials, LoginKey, SftpLogin
from services.ingestion.domain.paths import Folder
from services.ingestion.domain.schedule import ArrivalSchedule
from services.runtime.errors import AlreadyExists

# Tenants a caller may see: None means all of the account's.
Visible = Collection[uuid.UUID] | None
# Status latencies are computed over a zone's most recent loads.
LATENCY_SAMPLE = 200


# Statements of every upload's commit, built once (their parameters bound at each call).
_ZONE_WITH_TIER = select(
    dropzones,
    select(account_tiers.c.tier)
    .where(account_tiers.c.account_id == bindparam("account_id"))
    .scalar_subquery()
    .label("account_tier"),
).where(
    dropzones.c.account_id == bindparam("account_id"),
    dropzones.c.id == bindparam("dropzone_id"),
    dropzones.c.deleted_at.is_(None),
)
_ZONE_WITH_TIER_LOCKED = _ZONE_WITH_TIER.with_for_update(of=dropzones)
# The earliest file of the drop zone with this content that was not set aside.
_ORIGINAL = (
    select(files.c.id)
    .where(
        files.c.account_id == bindparam("account_id"),
        files.c.dropzone_id == bindparam("dropzone_id"),
        files.c.sha256 == bindparam("sha256"),
        files.c.status.not_in([s.value for s in NOT_LOADED]),
    )
    .order_by(files.c.id)
    .limit(1)
)


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

    async def get(
        self,
        account_id: uuid.UUID,
        dropzone_id: uuid.UUID,
        *,
        visible: Visible = None,
        for_update: bool = False,
    ) -> DropZone | None:
        query = select(dropzones).where(
            dropzones.c.account_id == account_id,
            dropzones.c.id == dropzone_id,
            dropzones.c.deleted_at.is_(None),
            _zone_visible(visible),
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        return _dropzone(row) if row else None

    async def page(
        self,
        account_id: uuid.UUID,
        *,
        after: uuid.UUID | None,
        limit: int,
        visible: Visible = None,
    ) -> list[DropZone]:
        query = (
            select(dropzones)
            .where(
                dropzones.c.account_id == account_id,
                dropzones.c.deleted_at.is_(None),
                _zone_visible(visible),
            )
            .order_by(dropzones.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(dropzones.c.id > after)
        return [_dropzone(row) for row in (await self.session.execute(query)).mappings()]

    async def update_settings(self, zone: DropZone) -> None:
        """Store the zone's quota, schedule and last late deadline."""
        await self.session.execute(
            update(dropzones)
            .where(dropzones.c.account_id == zone.account_id, dropzones.c.id == zone.id)
            .values(
                quota_bytes=zone.quota.max_bytes,
                quota_files=zone.quota.max_files,
                expected_by=zone.schedule.expected_by if zone.schedule else None,
                expected_timezone=zone.schedule.timezone if zone.schedule else None,
                expected_since=zone.schedule_since if zone.schedule else None,
                last_late_deadline=zone.last_late_deadline,
                updated_at=func.now(),
            )
        )

    async def mark_late(self, zone: DropZone, deadline: datetime) -> bool:
        """Record that the zone missed `deadline`; False when that was recorded already."""
        result = await self.session.execute(
            update(dropzones)
            .where(
                dropzones.c.account_id == zone.account_id,
                dropzones.c.id == zone.id,
                or_(
                    dropzones.c.last_late_deadline.is_(None),
                    dropzones.c.last_late_deadline < deadline,
                ),
            )
            .values(last_late_deadline=deadline)
            .returning(dropzones.c.id)
        )
        return result.first() is not None

    async def scheduled(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(account_id, dropzone_id) of every zone with a schedule, in every account, through
        the owner's SECURITY DEFINER function."""
        rows = await self.session.execute(
            text("SELECT account_id, id FROM ingestion.scheduled_dropzones()")
        )
        return [(row.account_id, row.id) for row in rows]

    async def with_tier(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[DropZone, Tier | None, Usage] | None:
        """The zone (locked until the transaction ends `for_update`), its account's tier and
        what it holds, in one statement. Locked, the zone's row is its latest version, so
        what it holds is exact (a trigger on files keeps it there); anything else this
        statement read (the tier) is as of before the wait for the lock."""
        query = _ZONE_WITH_TIER_LOCKED if for_update else _ZONE_WITH_TIER
        params = {"account_id": account_id, "dropzone_id": dropzone_id}
        row = (await self.session.execute(query, params)).mappings().first()
        if row is None:
            return None
        usage = Usage(files=int(row["stored_files"]), bytes=int(row["stored_bytes"]))
        return _dropzone(row), Tier(row["account_tier"]) if row["account_tier"] else None, usage

    async def usage(self, account_id: uuid.UUID, dropzone_id: uuid.UUID) -> Usage:
        """What the zone holds (kept on its row by a trigger on files)."""
        row = (
            await self.session.execute(
                select(dropzones.c.stored_files, dropzones.c.stored_bytes).where(
                    dropzones.c.account_id == account_id, dropzones.c.id == dropzone_id
                )
            )
        ).first()
        return Usage(files=int(row[0]), bytes=int(row[1])) if row else Usage(files=0, bytes=0)


class SftpLogins:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, account_id: uuid.UUID, login_id: uuid.UUID, *, for_update: bool = False
    ) -> SftpLogin | None:
        query = select(sftp_logins).where(
            sftp_logins.c.account_id == account_id, sftp_logins.c.id == login_id
        )
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        if row is None:
            return None
        keys = await self.keys_of(account_id, [login_id])
        return _login(row, keys.get(login_id, ()))

    async def of_zone(self, account_id: uuid.UUID, dropzone_id: uuid.UUID) -> list[SftpLogin]:
        rows = (
            (
                await self.session.execute(
                    select(sftp_logins)
                    .where(
                        sftp_logins.c.account_id == account_id,
                        sftp_logins.c.dropzone_id == dropzone_id,
                    )
                    .order_by(sftp_logins.c.id)
                )
            )
            .mappings()
            .all()
        )
        keys = await self.keys_of(account_id, [row["id"] for row in rows])
        return [_login(row, keys.get(row["id"], ())) for row in rows]

    async def locked(self, account_id: uuid.UUID, now: datetime) -> list[SftpLogin]:
        rows = (
            await self.session.execute(
                select(sftp_logins)
                .where(sftp_logins.c.account_id == account_id, sftp_logins.c.locked_until > now)
                .order_by(sftp_logins.c.locked_until.desc())
            )
        ).mappings()
        return [_login(row, ()) for row in rows]

    async def keys_of(
        self, account_id: uuid.UUID, login_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[LoginKey, ...]]:
        if not login_ids:
            return {}
        rows = (
            await self.session.execute(
                select(sftp_login_keys)
                .where(
                    sftp_login_keys.c.account_id == account_id,
                    sftp_login_keys.c.login_id.in_(login_ids),
                )
                .order_by(sftp_login_keys.c.id)
            )
        ).mappings()
        found: dict[uuid.UUID, list[LoginKey]] = {}
        for row in rows:
            found.setdefault(row["login_id"], []).append(_key(row))
        return {login_id: tuple(keys) for login_id, keys in found.items()}

    async def update(self, login_id: uuid.UUID, account_id: uuid.UUID, **values: Any) -> None:
        await self.session.execute(
            update(sftp_logins)
            .where(sftp_logins.c.account_id == account_id, sftp_logins.c.id == login_id)
            .values(**values, updated_at=func.now())
        )

    async def set_failures(
        self, login_id: uuid.UUID, account_id: uuid.UUID, state: FailureState
    ) -> None:
        """Failure bookkeeping does not count as a change of the login (no updated_at)."""
        await self.session.execute(
            update(sftp_logins)
            .where(sftp_logins.c.account_id == account_id, sftp_logins.c.id == login_id)
            .values(
                failed_attempts=state.failed_attempts,
                failures_since=state.failures_since,
                locked_until=state.locked_until,
                lockouts=state.lockouts,
            )
        )

    async def add_key(self, key: LoginKey, account_id: uuid.UUID) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    sftp_login_keys.insert().values(
                        id=key.id,
                        account_id=account_id,
                        login_id=key.login_id,
                        algorithm=key.algorithm,
                        fingerprint=key.fingerprint,
                        public_key=key.public_key,
                        comment=key.comment,
                        created_at=key.created_at,
                        updated_at=key.created_at,
                    )
                )
        except IntegrityError as error:
            if _constraint(error) == "sftp_login_keys_fingerprint_key":
                raise AlreadyExists(f"the login already has the key {key.fingerprint}") from None
            raise

    async def remove_key(
        self, account_id: uuid.UUID, login_id: uuid.UUID, key_id: uuid.UUID
    ) -> LoginKey | None:
        row = (
            (
                await self.session.execute(
                    delete(sftp_login_keys)
                    .where(
                        sftp_login_keys.c.account_id == account_id,
                        sftp_login_keys.c.login_id == login_id,
                        sftp_login_keys.c.id == key_id,
                    )
                    .returning(*sftp_login_keys.c)
                )
            )
            .mappings()
            .first()
        )
        return _key(row) if row else None

    async def delete(self, account_id: uuid.UUID, login_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(sftp_login_keys).where(
                sftp_login_keys.c.account_id == account_id, sftp_login_keys.c.login_id == login_id
            )
        )
        await self.session.execute(
            delete(sftp_logins).where(
                sftp_logins.c.account_id == account_id, sftp_logins.c.id == login_id
            )
        )

    async def retire(self, username: str, *, account_id: uuid.UUID, login_id: uuid.UUID) -> None:
        await self.session.execute(
            text(
                "INSERT INTO ingestion.retired_usernames (username, account_id, login_id)"
                " VALUES (lower(:username), :account_id, :login_id)"
                " ON CONFLICT (username) DO NOTHING"
            ),
            {"username": username, "account_id": account_id, "login_id": login_id},
        )

    async def is_retired(self, username: str) -> bool:
        """Across accounts, through the owner's SECURITY DEFINER function."""
        return bool(
            (
                await self.session.execute(
                    text("SELECT ingestion.username_is_retired(:username)"),
                    {"username": username},
                )
            ).scalar_one()
        )

    async def login_with_key(self, username: str, fingerprint: str) -> uuid.UUID | None:
        """The login of `username` holding the key, in any account (SECURITY DEFINER)."""
        return (
            await self.session.execute(
                text("SELECT login_id FROM ingestion.find_sftp_login_key(:username, :fingerprint)"),
                {"username": username, "fingerprint": fingerprint},
            )
        ).scalar_one_or_none()

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
            files.insert(),
            {
                "id": file.id,
                "account_id": file.account_id,
                "dropzone_id": file.dropzone_id,
                "name": file.name,
                "size_bytes": file.size_bytes,
                "sha256": file.sha256,
                "storage_path": file.storage_path,
                "status": file.status.value,
                "status_reason": file.status_reason,
                "duplicate_of": file.duplicate_of,
                "source_schema": file.source_schema,
                "received_at": file.received_at,
                "updated_at": file.updated_at,
                "login_id": file.login_id,
            },
        )

    async def get(
        self,
        account_id: uuid.UUID,
        file_id: uuid.UUID,
        *,
        for_update: bool = False,
        visible: Visible = None,
    ) -> IngestedFile | None:
        query = select(files).where(
            files.c.account_id == account_id, files.c.id == file_id, _file_visible(visible)
        )
        if for_update:
            query = query.with_for_update(of=files)
        row = (await self.session.execute(query)).mappings().first()
        return _file(row) if row else None

    async def waiting(self, account_id: uuid.UUID, dropzone_id: uuid.UUID) -> int:
        """Files of the zone received or processing."""
        return int(
            (
                await self.session.execute(
                    select(func.count()).where(
                        files.c.account_id == account_id,
                        files.c.dropzone_id == dropzone_id,
                        files.c.status.in_([s.value for s in WAITING]),
                    )
                )
            ).scalar_one()
        )

    async def zone_numbers(self, account_id: uuid.UUID, dropzone_id: uuid.UUID) -> "ZoneNumbers":
        """The figures of a zone's status page, in one statement."""
        of_zone = and_(files.c.account_id == account_id, files.c.dropzone_id == dropzone_id)
        recent = (
            select(
                func.extract("epoch", files.c.completed_at - files.c.received_at).label("seconds")
            )
            .where(
                of_zone,
                files.c.completed_at.is_not(None),
                files.c.status.in_([FileStatus.LOADED.value, FileStatus.PARTIALLY_LOADED.value]),
            )
            .order_by(files.c.completed_at.desc())
            .limit(LATENCY_SAMPLE)
            .subquery()
        )
        last = (
            select(files.c.name, files.c.status, files.c.received_at)
            .where(of_zone)
            .order_by(files.c.id.desc())
            .limit(1)
            .subquery()
        )
        stats = select(
            func.count(),
            func.coalesce(func.sum(files.c.size_bytes), 0),
            func.count().filter(files.c.status.in_([s.value for s in WAITING])),
        ).where(of_zone)
        totals = (await self.session.execute(stats)).one()
        sample = (
            await self.session.execute(
                select(
                    func.percentile_cont(0.5).within_group(recent.c.seconds),
                    func.percentile_cont(0.95).within_group(recent.c.seconds),
                    func.count(),
                )
            )
        ).one()
        newest = (await self.session.execute(select(last))).first()
        return ZoneNumbers(
            files_stored=int(totals[0]),
            bytes_stored=int(totals[1]),
            files_waiting=int(totals[2]),
            latency_p50_seconds=float(sample[0]) if sample[0] is not None else None,
            latency_p95_seconds=float(sample[1]) if sample[1] is not None else None,
            latency_sample_size=int(sample[2]),
            last_upload_at=newest.received_at if newest else None,
            last_file_name=newest.name if newest else "",
            last_file_status=FileStatus(newest.status) if newest else None,
        )

    async def page(
        self,
        account_id: uuid.UUID,
        *,
        dropzone_id: uuid.UUID | None,
        before: uuid.UUID | None,
        limit: int,
        visible: Visible = None,
    ) -> list[IngestedFile]:
        """Newest first (ids are UUIDv7, so they sort by arrival)."""
        query = (
            select(files)
            .where(files.c.account_id == account_id, _file_visible(visible))
            .order_by(files.c.id.desc())
            .limit(limit)
        )
        if dropzone_id is not None:
            query = query.where(files.c.dropzone_id == dropzone_id)
        if before is not None:
            query = query.where(files.c.id < before)
        return [_file(row) for row in (await self.session.execute(query)).mappings()]

    async def original_of(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, sha256: str
    ) -> uuid.UUID | None:
        params = {"account_id": account_id, "dropzone_id": dropzone_id, "sha256": sha256}
        return (await self.session.execute(_ORIGINAL, params)).scalar_one_or_none()

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
        completed: bool = False,
        source_schema: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "updated_at": func.now()}
        if source_schema is not None:
            values["source_schema"] = source_schema
        if completed:
            values["completed_at"] = func.now()
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


class Documents:
    """Receipts and reject files of a zone, newest of each name first."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, document: "ZoneDocument") -> None:
        await self.session.execute(
            zone_documents.insert().values(
                id=document.id,
                account_id=document.account_id,
                dropzone_id=document.dropzone_id,
                file_id=document.file_id,
                folder=document.folder.value,
                name=document.name,
                size_bytes=document.size_bytes,
                storage_path=document.storage_path,
            )
        )

    async def listing(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, folder: Folder, *, limit: int
    ) -> list["ZoneDocument"]:
        d = zone_documents.c
        ranked = select(
            zone_documents,
            func.row_number().over(partition_by=d.name, order_by=d.id.desc()).label("rank"),
        ).where(d.account_id == account_id, d.dropzone_id == dropzone_id, d.folder == folder)
        newest = ranked.subquery()
        rows = (
            await self.session.execute(
                select(*(newest.c[c.name] for c in zone_documents.columns))
                .where(newest.c.rank == 1)
                .order_by(newest.c.id.desc())
                .limit(limit)
            )
        ).mappings()
        return [_document(row) for row in rows]

    async def newest_named(
        self, account_id: uuid.UUID, dropzone_id: uuid.UUID, folder: Folder, name: str
    ) -> "ZoneDocument | None":
        d = zone_documents.c
        row = (
            (
                await self.session.execute(
                    select(zone_documents)
                    .where(
                        d.account_id == account_id,
                        d.dropzone_id == dropzone_id,
                        d.folder == folder,
                        d.name == name,
                    )
                    .order_by(d.id.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        return _document(row) if row else None


class AddressLockouts:
    """Failed sign-ins per source address (platform state: no RLS, filtered explicitly)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, address: str, *, for_update: bool = False) -> FailureState:
        query = select(address_lockouts).where(address_lockouts.c.address == address)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().first()
        return _failures(row) if row else FailureState()

    async def save(
        self, address: str, state: FailureState, *, account_id: uuid.UUID | None
    ) -> None:
        """Store the address's state; the accounts it targeted are kept for the window."""
        await self.session.execute(
            text(
                "INSERT INTO ingestion.address_lockouts AS a (address, failed_attempts,"
                " failures_since, locked_until, lockouts, targeted_accounts)"
                " VALUES (:address, :failed_attempts, :failures_since, :locked_until,"
                " :lockouts, CAST(:targeted AS uuid[]))"
                " ON CONFLICT (address) DO UPDATE SET"
                " failed_attempts = EXCLUDED.failed_attempts,"
                " failures_since = EXCLUDED.failures_since,"
                " locked_until = EXCLUDED.locked_until,"
                " lockouts = EXCLUDED.lockouts,"
                " targeted_accounts = CASE WHEN EXCLUDED.failed_attempts = 1"
                "  THEN EXCLUDED.targeted_accounts"
                "  ELSE ARRAY(SELECT DISTINCT unnest(a.targeted_accounts"
                "   || EXCLUDED.targeted_accounts)) END,"
                " updated_at = now()"
            ),
            {
                "address": address,
                "failed_attempts": state.failed_attempts,
                "failures_since": state.failures_since,
                "locked_until": state.locked_until,
                "lockouts": state.lockouts,
                "targeted": [str(account_id)] if account_id else [],
            },
        )

    async def clear(self, address: str) -> None:
        await self.session.execute(
            delete(address_lockouts).where(
                address_lockouts.c.address == address,
                or_(
                    address_lockouts.c.locked_until.is_(None),
                    address_lockouts.c.locked_until <= func.now(),
                ),
            )
        )

    async def locked_for(
        self, account_id: uuid.UUID, now: datetime
    ) -> list[tuple[str, FailureState]]:
        """Addresses locked now that failed against this account's logins."""
        rows = (
            await self.session.execute(
                select(address_lockouts)
                .where(
                    address_lockouts.c.locked_until > now,
                    literal(account_id, Uuid) == address_lockouts.c.targeted_accounts.any_(),
                )
                .order_by(address_lockouts.c.locked_until.desc())
            )
        ).mappings()
        return [(row["address"], _failures(row)) for row in rows]


class AccountTiers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, account_id: uuid.UUID) -> Tier | None:
        tier = (
            await self.session.execute(
                select(account_tiers.c.tier).where(account_tiers.c.account_id == account_id)
            )
        ).scalar_one_or_none()
        return Tier(tier) if tier else None

    async def set(self, account_id: uuid.UUID, tier: Tier) -> None:
        statement = insert(account_tiers).values(account_id=account_id, tier=tier.value)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[account_tiers.c.account_id],
                set_={"tier": statement.excluded.tier, "updated_at": func.now()},
            )
        )


@dataclass(frozen=True)
class ZoneDocument:
    """A receipt or reject file in a zone's read-only folders."""

    id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    file_id: uuid.UUID
    folder: Folder
    name: str
    size_bytes: int
    storage_path: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class ZoneNumbers:
    files_stored: int
    bytes_stored: int
    files_waiting: int
    latency_p50_seconds: float | None
    latency_p95_seconds: float | None
    latency_sample_size: int
    last_upload_at: datetime | None
    last_file_name: str
    last_file_status: FileStatus | None


def _zone_visible(visible: Visible) -> ColumnElement[bool]:
    """Zones whose tenants overlap the caller's (every zone when the caller sees all)."""
    if visible is None:
        return literal(True)
    return dropzones.c.tenant_ids.overlap(cast(sorted(visible), ARRAY(dropzones.c.id.type)))


def _file_visible(visible: Visible) -> ColumnElement[bool]:
    if visible is None:
        return literal(True)
    zones = select(dropzones.c.id).where(_zone_visible(visible))
    return files.c.dropzone_id.in_(zones)


def _dropzone(row: RowMapping) -> DropZone:
    schedule = None
    if row["expected_by"] is not None:
        schedule = ArrivalSchedule(row["expected_by"], row["expected_timezone"])
    return DropZone(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        tenant_ids=tuple(row["tenant_ids"]),
        routes=tuple(Route(r["pattern"], r["source_schema"]) for r in row["routes"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        quota=Quota(max_bytes=row["quota_bytes"], max_files=row["quota_files"]),
        schedule=schedule,
        schedule_since=row["expected_since"],
        last_late_deadline=row["last_late_deadline"],
    )


def _failures(row: RowMapping) -> FailureState:
    return FailureState(
        failed_attempts=row["failed_attempts"],
        failures_since=row["failures_since"],
        locked_until=row["locked_until"],
        lockouts=row["lockouts"],
    )


def _key(row: RowMapping) -> LoginKey:
    return LoginKey(
        id=row["id"],
        login_id=row["login_id"],
        algorithm=row["algorithm"],
        fingerprint=row["fingerprint"],
        public_key=row["public_key"],
        comment=row["comment"],
        created_at=row["created_at"],
    )


def _login(row: RowMapping, keys: tuple[LoginKey, ...]) -> SftpLogin:
    return SftpLogin(
        id=row["id"],
        account_id=row["account_id"],
        dropzone_id=row["dropzone_id"],
        username=row["username"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        disabled_at=row["disabled_at"],
        failures=_failures(row),
        keys=keys,
    )


def _document(row: RowMapping) -> ZoneDocument:
    return ZoneDocument(
        id=row["id"],
        account_id=row["account_id"],
        dropzone_id=row["dropzone_id"],
        file_id=row["file_id"],
        folder=Folder(row["folder"]),
        name=row["name"],
        size_bytes=row["size_bytes"],
        storage_path=row["storage_path"],
        created_at=row["created_at"],
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
        login_id=row["login_id"],
        completed_at=row["completed_at"],
    )


class Repositories:
    """The repositories of one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dropzones = DropZones(session)
        self.logins = SftpLogins(session)
        self.files = Files(session)
        self.documents = Documents(session)
        self.addresses = AddressLockouts(session)
        self.tiers = AccountTiers(session)
