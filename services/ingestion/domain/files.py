"""Ingested files: one finished upload, what became of it, and the rules of its status."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.ingestion.domain.dropzones import Route, route_for
from services.runtime.errors import InvalidInput, PreconditionFailed


class FileStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    LOADED = "loaded"
    PARTIALLY_LOADED = "partially_loaded"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


# What a finished load may report.
LOAD_OUTCOMES = frozenset(
    {FileStatus.LOADED, FileStatus.PARTIALLY_LOADED, FileStatus.FAILED, FileStatus.QUARANTINED}
)
# A file in one of these states was never loaded, so the same content may arrive again as new.
NOT_LOADED = frozenset({FileStatus.DUPLICATE, FileStatus.QUARANTINED, FileStatus.FAILED})
# A load may start on a file that arrived, or again on one whose load failed.
LOADABLE = frozenset({FileStatus.RECEIVED, FileStatus.FAILED})
# Files waiting for their load to finish.
WAITING = frozenset({FileStatus.RECEIVED, FileStatus.PROCESSING})
# An admin may load these again ("reprocess"); a duplicate is then loaded as itself.
REPROCESSABLE = frozenset(
    {FileStatus.LOADED, FileStatus.PARTIALLY_LOADED, FileStatus.FAILED, FileStatus.DUPLICATE}
)
# "retry" is for failed loads only.
RETRYABLE = frozenset({FileStatus.FAILED})
EMPTY_FILE = "empty file"
# Names clients give an upload in progress before renaming it to its real name (WinSCP's
# `.filepart`, and the usual `.part`/`.tmp` variants): such a file counts only once renamed.
TEMPORARY_SUFFIXES = (".filepart", ".part", ".partial", ".tmp", ".temp", ".upload")


@dataclass(frozen=True)
class RowCounts:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        if min(self.total, self.created, self.updated, self.unchanged, self.rejected) < 0:
            raise InvalidInput("row counts cannot be negative")


@dataclass(frozen=True)
class IngestedFile:
    id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    name: str
    size_bytes: int
    sha256: str
    storage_path: str
    status: FileStatus
    received_at: datetime
    updated_at: datetime
    status_reason: str = ""
    duplicate_of: uuid.UUID | None = None
    source_schema: str = ""
    rows: RowCounts = field(default_factory=RowCounts)
    login_id: uuid.UUID | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class Arrival:
    """How a finished upload is filed: its first status and why."""

    status: FileStatus
    source_schema: str = ""
    reason: str = ""
    duplicate_of: uuid.UUID | None = None


def check_upload(*, name: str, size_bytes: int) -> None:
    """An upload is only kept when it has a name and some content."""
    if not name:
        raise InvalidInput("a file needs a name")
    if size_bytes <= 0:
        raise InvalidInput(f"{EMPTY_FILE}: uploads without content are not accepted")


def is_temporary_name(name: str) -> bool:
    """Whether a client uploads under this name only to rename the file when it is complete."""
    return name.lower().endswith(TEMPORARY_SUFFIXES)


def check_commit_rename(source: str, target: str) -> None:
    """A staged upload (temporary name) may be renamed to a real name, and only that."""
    if not is_temporary_name(source):
        raise PreconditionFailed("a received file cannot be renamed")
    if is_temporary_name(target):
        raise PreconditionFailed(f"{target!r} is a temporary name: rename to the real name")


def reprocessed(current: FileStatus, *, retry: bool) -> FileStatus:
    """The status of a file an admin asked to load again: received, for loading."""
    allowed = RETRYABLE if retry else REPROCESSABLE
    if current not in allowed:
        action = "retried" if retry else "reprocessed"
        names = ", ".join(sorted(s.value for s in allowed))
        raise PreconditionFailed(
            f"a {current.value} file cannot be {action} (only {names} files can)"
        )
    return FileStatus.RECEIVED


def file_arrived(*, name: str, routes: Sequence[Route], original: uuid.UUID | None) -> Arrival:
    """Content already received in this drop zone is a duplicate; a name no route matches is
    quarantined; anything else is received for loading with its route's source schema."""
    route = route_for(routes, name)
    schema = route.source_schema if route else ""
    if original is not None:
        return Arrival(
            FileStatus.DUPLICATE,
            source_schema=schema,
            reason=f"same content as file {original}",
            duplicate_of=original,
        )
    if route is None:
        return Arrival(FileStatus.QUARANTINED, reason=f"no route of the drop zone matches {name!r}")
    return Arrival(FileStatus.RECEIVED, source_schema=schema)


def load_started(current: FileStatus) -> FileStatus | None:
    """The file's new status when its load starts, or None when the event changes nothing."""
    return FileStatus.PROCESSING if current in LOADABLE else None


def load_outcome(status: str) -> FileStatus:
    if status not in LOAD_OUTCOMES:
        raise InvalidInput(f"not a load outcome: {status!r}")
    return FileStatus(status)


def load_completed(current: FileStatus, outcome: FileStatus) -> FileStatus | None:
    """The file's status once its load completed; a duplicate is never loaded, so stays one."""
    return None if current is FileStatus.DUPLICATE else outcome
