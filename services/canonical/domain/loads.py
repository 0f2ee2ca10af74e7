"""A load of one file: its counts and the status they add up to."""

import csv
import dataclasses
import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from services.canonical.domain.mapping import MappedRow, RejectRow

__all__ = ["RejectRow"]

PROCESSING = "processing"
LOADED = "loaded"
PARTIALLY_LOADED = "partially_loaded"
FAILED = "failed"
QUARANTINED = "quarantined"
NO_ROW_LOADED = "no row loaded; see rejects"
HEADER_ONLY = "the file has a header but no rows"


@dataclass(frozen=True)
class Reject:
    """A row of a file that did not load, with every reason."""

    id: uuid.UUID
    file_id: uuid.UUID
    row_number: int
    reasons: tuple[str, ...]
    created_at: datetime
    # The source column of each reason ("" for the row), and the kept original values.
    reason_columns: tuple[str, ...] = ()
    value_columns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()


@dataclass
class LoadCounts:
    rows_total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class LoadOutcome:
    status: str
    reason: str
    counts: LoadCounts
    # The source schema the file was loaded with (recognised by its header, which may not be
    # the one its route named) and its mapping version; "" and 0 when none was.
    source_schema: str = ""
    source_schema_version: int = 0

    def used(self, source_schema: str, version: int) -> "LoadOutcome":
        return dataclasses.replace(self, source_schema=source_schema, source_schema_version=version)

    @classmethod
    def failed(cls, reason: str, rows_total: int = 0) -> "LoadOutcome":
        return cls(FAILED, reason, LoadCounts(rows_total=rows_total))

    @classmethod
    def quarantined(cls, reason: str) -> "LoadOutcome":
        """Set aside: the file's header matches no source schema of the account."""
        return cls(QUARANTINED, reason, LoadCounts())

    @classmethod
    def of(cls, counts: LoadCounts) -> "LoadOutcome":
        """Loaded when no row was rejected, partially when some were, failed when all were."""
        if counts.rows_total == 0:
            return cls(LOADED, HEADER_ONLY, counts)
        if counts.rejected == 0:
            return cls(LOADED, "", counts)
        if counts.rejected < counts.rows_total:
            return cls(
                PARTIALLY_LOADED, f"{counts.rejected} of {counts.rows_total} rows rejected", counts
            )
        return cls(FAILED, NO_ROW_LOADED, counts)


def tenant_reasons(
    row: MappedRow,
    *,
    tenant_id: uuid.UUID | None,
    allowed: frozenset[uuid.UUID],
    source: str,
) -> tuple[str, ...]:
    """Why a row's tenant code does not give a tenant it may load into (never a guess)."""
    if not row.tenant_code:
        return ()
    prefix = f"row {row.row_number}: "
    if tenant_id is None:
        return (prefix + f"tenant code '{row.tenant_code}' is unknown for source '{source}'",)
    if tenant_id not in allowed:
        return (
            prefix + f"tenant code '{row.tenant_code}' belongs to a tenant outside this drop"
            " zone's scope",
        )
    return ()


def rejects_csv_lines(rejects: Iterable[Reject]) -> Iterator[str]:
    """The rejects file: "row_number,column,reason,<kept columns...>", one line per reason,
    the header from the first reject's kept columns (one load's rejects share them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header_written = False
    for reject in rejects:
        if not header_written:
            writer.writerow(["row_number", "column", "reason", *reject.value_columns])
            header_written = True
        columns = reject.reason_columns or ("",) * len(reject.reasons)
        for column, reason in zip(columns, reject.reasons, strict=False):
            writer.writerow([reject.row_number, column, reason, *reject.values])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if not header_written:
        yield "row_number,column,reason\n"
