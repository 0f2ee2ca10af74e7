"""The set-based half of a load: rows streamed by COPY into a staging table, then merged.

The staging table is a temporary table of the load's transaction (no other session sees it,
it is dropped at commit or rollback, and it writes no WAL). Each staged row is either a record
ready to store (`dedupe_key` set) or a reject (`reasons` set). The merge, under an advisory
lock per account and canonical schema, rejects later rows repeating a dedupe key of the same
file, notes which keys exist already, updates the records whose content changed, inserts the
new keys in dedupe-key order, rewrites the blind index of what changed and inserts the
rejects: a fixed number of statements, whatever the file's size.
"""

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

STAGE = "pg_temp.load_stage"
STAGE_COLUMNS = (
    "row_number",
    "tenant_id",
    "source_id",
    "dedupe_key",
    "data",
    "content_hash",
    "index_fields",
    "index_digests",
    "reasons",
    "reason_columns",
    "value_columns",
    "original_values",
)

_CREATE_STAGE = text(
    "CREATE TEMPORARY TABLE load_stage ("
    " row_number bigint NOT NULL,"
    " tenant_id uuid,"
    " source_id text,"
    " dedupe_key text,"
    " data jsonb,"
    " content_hash text,"
    " index_fields text[],"
    " index_digests text[],"
    " reasons text[],"
    " reason_columns text[],"
    " value_columns text[],"
    " original_values text[],"
    # The stored record's content hash, when its key exists already.
    " existing_hash text)"
    " ON COMMIT DROP"
)

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:account || '/' || :schema, 0))")

_REJECT_REPEATED_KEYS = text(
    "WITH firsts AS ("
    f" SELECT dedupe_key, min(row_number) AS first FROM {STAGE}"
    " WHERE dedupe_key IS NOT NULL GROUP BY dedupe_key HAVING count(*) > 1)"
    f" UPDATE {STAGE} s SET"
    "  reasons = ARRAY['row ' || s.row_number || ': source id ''' || s.source_id"
    "   || ''' of the same tenant is already on row ' || f.first],"
    "  reason_columns = ARRAY[CAST(:source_id_column AS text)],"
    "  value_columns = '{}', original_values = '{}', dedupe_key = NULL"
    " FROM firsts f WHERE s.dedupe_key = f.dedupe_key AND s.row_number > f.first"
)

_FIND_EXISTING = text(
    f"UPDATE {STAGE} s SET existing_hash = r.content_hash FROM canonical.records r"
    " WHERE s.dedupe_key IS NOT NULL AND r.account_id = :account_id"
    " AND r.dedupe_key = s.dedupe_key"
)

_CHANGED = "s.existing_hash IS NOT NULL AND s.existing_hash <> s.content_hash"
_NEW = "s.dedupe_key IS NOT NULL AND s.existing_hash IS NULL"

_UPDATE_CHANGED = text(
    "UPDATE canonical.records r SET data = s.data, content_hash = s.content_hash,"
    " key_version = :key_version, file_id = :file_id, updated_at = now()"
    f" FROM {STAGE} s"
    f" WHERE {_CHANGED} AND r.account_id = :account_id AND r.dedupe_key = s.dedupe_key"
)

_INSERT_NEW = text(
    "INSERT INTO canonical.records (id, account_id, tenant_id, schema, source, source_id,"
    " dedupe_key, data, content_hash, key_version, file_id)"
    " SELECT uuidv7(), :account_id, s.tenant_id, :schema, :source, s.source_id, s.dedupe_key,"
    " s.data, s.content_hash, :key_version, :file_id"
    f" FROM {STAGE} s WHERE {_NEW} ORDER BY s.dedupe_key"
)

_FORGET_CHANGED_INDEX = text(
    f"DELETE FROM canonical.record_index i USING {STAGE} s"
    f" WHERE {_CHANGED} AND i.account_id = :account_id AND i.dedupe_key = s.dedupe_key"
)

_WRITE_INDEX = text(
    "INSERT INTO canonical.record_index (account_id, tenant_id, schema, dedupe_key, field,"
    " digest, key_version)"
    " SELECT :account_id, s.tenant_id, :schema, s.dedupe_key, u.field, u.digest,"
    " :index_key_version"
    f" FROM {STAGE} s CROSS JOIN LATERAL unnest(s.index_fields, s.index_digests)"
    " AS u(field, digest)"
    f" WHERE ({_NEW}) OR ({_CHANGED})"
    " ORDER BY s.dedupe_key, u.field"
)

_INSERT_REJECTS = text(
    "INSERT INTO canonical.rejects (id, account_id, file_id, row_number, reasons,"
    ' reason_columns, value_columns, "values")'
    " SELECT uuidv7(), :account_id, :file_id, s.row_number, s.reasons, s.reason_columns,"
    " s.value_columns, s.original_values"
    f" FROM {STAGE} s WHERE s.reasons IS NOT NULL ORDER BY s.row_number"
)

_COUNT = text(
    "SELECT count(*) FILTER (WHERE dedupe_key IS NOT NULL) AS valid,"
    f" count(*) FILTER (WHERE reasons IS NOT NULL) AS rejected FROM {STAGE}"
)


@dataclass(frozen=True)
class MergeCounts:
    created: int
    updated: int
    unchanged: int
    rejected: int
    # Seconds each step of the merge took, for the load's log line.
    steps: dict[str, float] = field(default_factory=dict)


class LoadStage:
    """The staging table of one load, in the load's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self) -> None:
        await self.session.execute(_CREATE_STAGE)

    @asynccontextmanager
    async def copy(self) -> AsyncIterator[Callable[[bytes], Awaitable[None]]]:
        """A writer of COPY text-format lines (`record_line`, `reject_line`) into the stage."""
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        columns = ", ".join(STAGE_COLUMNS)
        async with driver.cursor() as cursor:
            async with cursor.copy(f"COPY {STAGE} ({columns}) FROM STDIN") as copy:
                yield copy.write

    async def merge(
        self,
        *,
        account_id: uuid.UUID,
        schema: str,
        source: str,
        source_id_column: str,
        file_id: uuid.UUID,
        key_version: int,
        index_key_version: int,
    ) -> MergeCounts:
        session = self.session
        timer = _Timer()
        await session.execute(text(f"ANALYZE {STAGE}"))
        await session.execute(_LOCK, {"account": str(account_id), "schema": schema})
        timer("analyze")
        await session.execute(_REJECT_REPEATED_KEYS, {"source_id_column": source_id_column})
        timer("repeated")
        await session.execute(_FIND_EXISTING, {"account_id": account_id})
        timer("existing")
        keys = {"account_id": account_id, "file_id": file_id, "key_version": key_version}
        updated = _rowcount(await session.execute(_UPDATE_CHANGED, keys))
        timer("update")
        created = _rowcount(
            await session.execute(_INSERT_NEW, {**keys, "schema": schema, "source": source})
        )
        timer("insert")
        await session.execute(_FORGET_CHANGED_INDEX, {"account_id": account_id})
        await session.execute(
            _WRITE_INDEX,
            {"account_id": account_id, "schema": schema, "index_key_version": index_key_version},
        )
        timer("index")
        await session.execute(_INSERT_REJECTS, {"account_id": account_id, "file_id": file_id})
        timer("rejects")
        counted = (await session.execute(_COUNT)).one()
        return MergeCounts(
            created=created,
            updated=updated,
            unchanged=counted.valid - created - updated,
            rejected=counted.rejected,
            steps=timer.steps,
        )


class _Timer:
    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.last = time.monotonic()

    def __call__(self, step: str) -> None:
        now = time.monotonic()
        self.steps[step] = round(now - self.last, 3)
        self.last = now


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


# COPY text format: backslash, tab, newline and carriage return are escaped; NULL is \N.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


_NEEDS_ESCAPE = re.compile("[\\\\\t\n\r]")


def copy_text(value: str) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return value
    return value.translate(_COPY_ESCAPES)


def copy_array(values: Sequence[str]) -> str:
    """A text[] literal, escaped for COPY."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return copy_text("{" + ",".join(quoted) + "}")


def record_line(
    row_number: int,
    tenant_id: str,
    source_id: str,
    dedupe_key: str,
    data_json: str,
    content_hash: str,
    index: Sequence[tuple[str, str]],
) -> str:
    """A staged record. `data_json` is compact JSON, which holds no raw tab or line break;
    `index` holds the (field, digest) pairs of its blind index (plain names, hex digests)."""
    if "\\" in data_json:
        data_json = data_json.replace("\\", "\\\\")
    fields = "{" + ",".join(field for field, _ in index) + "}"
    digests = "{" + ",".join(digest for _, digest in index) + "}"
    return (
        f"{row_number}\t{tenant_id}\t{copy_text(source_id)}\t{copy_text(dedupe_key)}"
        f"\t{data_json}\t{content_hash}\t{fields}\t{digests}\t{NULL}\t{NULL}\t{NULL}\t{NULL}\n"
    )


def reject_line(
    row_number: int,
    reasons: Sequence[str],
    reason_columns: Sequence[str],
    value_columns: Sequence[str],
    values: Sequence[str],
) -> str:
    """A staged reject: every reason, the column each is about, the row's kept values."""
    return (
        f"{row_number}\t{NULL}\t{NULL}\t{NULL}\t{NULL}\t{NULL}\t{NULL}\t{NULL}"
        f"\t{copy_array(reasons)}\t{copy_array(reason_columns)}"
        f"\t{copy_array(value_columns)}\t{copy_array(values)}\n"
    )
