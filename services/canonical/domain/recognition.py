"""Recognising a file's source schema by its header, and the dry-run summaries of a mapping.

`recognise` routes a file whose header is exactly the staging columns of one of the account's
source schemas to that schema, whatever route it came by; a header that matches none is
quarantined with `unrecognised_reason`.
"""

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from services.canonical.domain.files import AUTO_DELIMITER, normalize_header, sniff_delimiter
from services.canonical.domain.mapping import MAX_SAMPLE_ROWS, MappedRow
from services.canonical.domain.source_schemas import SourceSchema, SourceSchemaDefinition

S = TypeVar("S", SourceSchema, SourceSchemaDefinition)
MAX_SHOWN_COLUMNS = 20


def _definition(schema: SourceSchema | SourceSchemaDefinition) -> SourceSchemaDefinition:
    return schema.definition if isinstance(schema, SourceSchema) else schema


def _header_as(header: Sequence[str], definition: SourceSchemaDefinition) -> list[str]:
    """The header as this schema reads it: a header read with another delimiter (one value
    holding the whole line) is split again with this schema's."""
    names = normalize_header(header)
    if len(names) == 1 and len(definition.columns) > 1:
        delimiter = definition.delimiter
        if delimiter == AUTO_DELIMITER:
            delimiter = sniff_delimiter(names[0], quote=definition.quote)
        names = normalize_header(next(csv.reader([names[0]], delimiter=delimiter), []))
    return names


def recognise(header: Sequence[str], schemas: Iterable[S], *, preferred: str = "") -> S | None:
    """The source schema whose staging columns are exactly this header (the `preferred` name
    first when several are), or None when none is. Schemas without a header row never match."""
    matches = [
        schema
        for schema in schemas
        if (definition := _definition(schema)).header
        and tuple(_header_as(header, definition)) == definition.columns
    ]
    for schema in matches:
        if _definition(schema).name == preferred:
            return schema
    return matches[0] if matches else None


def misdelimited(header: Sequence[str], definition: SourceSchemaDefinition) -> bool:
    """Whether a header read as one value is this schema's columns delimited by another
    character: a malformed file of this schema (failed, with a hint), not an unknown one."""
    names = normalize_header(header)
    if len(names) != 1 or len(definition.columns) < 2:
        return False
    delimiter = sniff_delimiter(names[0], quote=definition.quote)
    split = next(csv.reader([names[0]], delimiter=delimiter), [])
    return tuple(normalize_header(split)) == definition.columns


def unrecognised_reason(header: Sequence[str]) -> str:
    names = normalize_header(header)
    shown = ", ".join(repr(n) for n in names[:MAX_SHOWN_COLUMNS])
    if len(names) > MAX_SHOWN_COLUMNS:
        shown += f" and {len(names) - MAX_SHOWN_COLUMNS} more"
    return f"the header matches no source schema of the account (columns: {shown})"


@dataclass
class CodeCoverage:
    """One value-map code without an entry: how often, and on which rows (the first few)."""

    field: str
    code: str
    count: int = 0
    sample_rows: list[int] = field(default_factory=list)


@dataclass
class Coverage:
    """Codes without an entry in their value map, per field, over the rows seen."""

    codes: dict[tuple[str, str], CodeCoverage] = field(default_factory=dict)

    def add(self, row: MappedRow) -> None:
        for field_name, code in row.unmapped:
            entry = self.codes.setdefault(
                (field_name, code), CodeCoverage(field=field_name, code=code)
            )
            entry.count += 1
            if len(entry.sample_rows) < MAX_SAMPLE_ROWS:
                entry.sample_rows.append(row.row_number)

    def report(self) -> list[CodeCoverage]:
        return sorted(self.codes.values(), key=lambda c: (c.field, -c.count, c.code))


@dataclass
class DiffCounts:
    """What loading a file with a mapping version would do to the records stored now."""

    rows_total: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
