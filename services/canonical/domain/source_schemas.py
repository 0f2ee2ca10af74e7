"""Source schemas: one customer file layout and how its columns map onto a canonical schema."""

import codecs
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.canonical.domain.errors import InvalidSourceSchema
from services.canonical.domain.schemas import CANONICAL_SCHEMAS, CanonicalSchema

TRANSFORMS = ("trim", "upper", "lower")
DEFAULT_DELIMITER = ","
DEFAULT_ENCODING = "utf-8"
# Codec name (as `codecs.lookup` spells it) -> the name we store and show.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf-16": "utf-16",
    "cp1252": "cp1252",
    "iso8859-1": "latin-1",
}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class FieldMapping:
    canonical_field: str
    source_column: str
    transforms: tuple[str, ...] = ()
    value_map: str = ""


@dataclass(frozen=True)
class ValueMap:
    name: str
    entries: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False
    default_value: str = ""


@dataclass(frozen=True)
class SourceSchemaDefinition:
    """A validated source schema; build it with `define_source_schema`."""

    name: str
    canonical_schema: str
    columns: tuple[str, ...]
    delimiter: str
    encoding: str
    source_id_column: str
    tenant_code_column: str
    tenant_code_source: str
    field_mappings: tuple[FieldMapping, ...]
    value_maps: tuple[ValueMap, ...] = ()

    @property
    def canonical(self) -> CanonicalSchema:
        return CANONICAL_SCHEMAS[self.canonical_schema]

    def value_map(self, name: str) -> ValueMap | None:
        return next((m for m in self.value_maps if m.name == name), None)


@dataclass(frozen=True)
class SourceSchema:
    """A source schema as an account keeps it."""

    id: uuid.UUID
    definition: SourceSchemaDefinition
    version: int
    created_at: datetime
    updated_at: datetime


def normalize_encoding(encoding: str) -> str | None:
    """The stored spelling of a supported encoding, or None when it is not supported."""
    try:
        return ENCODINGS.get(codecs.lookup(encoding.strip()).name)
    except LookupError:
        return None


def define_source_schema(
    *,
    name: str,
    canonical_schema: str,
    columns: Iterable[str],
    source_id_column: str,
    tenant_code_column: str,
    field_mappings: Iterable[FieldMapping],
    value_maps: Iterable[ValueMap] = (),
    delimiter: str = "",
    encoding: str = "",
    tenant_code_source: str = "",
) -> SourceSchemaDefinition:
    """Validate a source schema, naming every problem at once, and fill in the defaults."""
    problems: list[str] = []
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        problems.append(
            "name must be 1 to 100 letters, digits, '_', '-' or '.', starting with a letter"
            " or digit"
        )
    canonical = CANONICAL_SCHEMAS.get(canonical_schema)
    if canonical is None:
        known = ", ".join(sorted(CANONICAL_SCHEMAS))
        problems.append(f"canonical schema '{canonical_schema}' does not exist (known: {known})")

    columns = tuple(c.strip() for c in columns)
    problems += _column_problems(columns)
    delimiter = delimiter or DEFAULT_DELIMITER
    if len(delimiter) != 1 or delimiter in '"\r\n':
        problems.append("delimiter must be one character other than a quote or a line break")
    stored_encoding = normalize_encoding(encoding or DEFAULT_ENCODING)
    if stored_encoding is None:
        supported = ", ".join(ENCODINGS.values())
        problems.append(f"encoding '{encoding}' is not supported (use one of: {supported})")

    source_id_column = source_id_column.strip()
    tenant_code_column = tenant_code_column.strip()
    for label, column in (
        ("source_id_column", source_id_column),
        ("tenant_code_column", tenant_code_column),
    ):
        if not column:
            problems.append(f"{label} is required")
        elif column not in columns:
            problems.append(f"{label} '{column}' is not one of the columns")
    tenant_code_source = tenant_code_source.strip() or name

    value_maps = tuple(value_maps)
    mappings = tuple(
        FieldMapping(
            canonical_field=m.canonical_field.strip(),
            source_column=m.source_column.strip(),
            transforms=tuple(t.strip().lower() for t in m.transforms),
            value_map=m.value_map.strip(),
        )
        for m in field_mappings
    )
    problems += _value_map_problems(value_maps)
    if canonical is not None:
        problems += _mapping_problems(mappings, columns, canonical, value_maps)

    if problems:
        raise InvalidSourceSchema("invalid source schema: " + "; ".join(problems))
    assert stored_encoding is not None
    return SourceSchemaDefinition(
        name=name,
        canonical_schema=canonical_schema,
        columns=columns,
        delimiter=delimiter,
        encoding=stored_encoding,
        source_id_column=source_id_column,
        tenant_code_column=tenant_code_column,
        tenant_code_source=tenant_code_source,
        field_mappings=mappings,
        value_maps=value_maps,
    )


def _column_problems(columns: tuple[str, ...]) -> list[str]:
    if not columns:
        return ["columns are required"]
    problems = []
    if any(not c for c in columns):
        problems.append("column names must not be empty")
    duplicates = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicates:
        problems.append("duplicate columns: " + ", ".join(duplicates))
    return problems


def _value_map_problems(value_maps: tuple[ValueMap, ...]) -> list[str]:
    problems = []
    names = [m.name for m in value_maps]
    if any(not n.strip() for n in names):
        problems.append("value maps need a name")
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        problems.append("duplicate value maps: " + ", ".join(duplicates))
    for value_map in value_maps:
        if value_map.strict and value_map.default_value:
            problems.append(
                f"value map '{value_map.name}' is strict, so it cannot have a default_value"
            )
    return problems


def _mapping_problems(
    mappings: tuple[FieldMapping, ...],
    columns: tuple[str, ...],
    canonical: CanonicalSchema,
    value_maps: tuple[ValueMap, ...],
) -> list[str]:
    problems = []
    if not mappings:
        problems.append("field_mappings are required")
    maps = {m.name: m for m in value_maps}
    seen: set[str] = set()
    for mapping in mappings:
        target = canonical.field_named(mapping.canonical_field)
        label = f"mapping of '{mapping.canonical_field}'"
        if target is None:
            problems.append(
                f"canonical field '{mapping.canonical_field}' does not exist in '{canonical.name}'"
            )
        if mapping.canonical_field in seen:
            problems.append(f"canonical field '{mapping.canonical_field}' is mapped twice")
        seen.add(mapping.canonical_field)
        if mapping.source_column not in columns:
            problems.append(
                f"{label}: source column '{mapping.source_column}' is not one of the columns"
            )
        unknown = [t for t in mapping.transforms if t not in TRANSFORMS]
        if unknown:
            problems.append(
                f"{label}: unknown transforms {', '.join(unknown)} (use {', '.join(TRANSFORMS)})"
            )
        if mapping.value_map:
            value_map = maps.get(mapping.value_map)
            if value_map is None:
                problems.append(f"{label}: value map '{mapping.value_map}' does not exist")
            elif target is not None and target.allowed_values:
                outputs = set(value_map.entries.values())
                if not value_map.strict and value_map.default_value:
                    outputs.add(value_map.default_value)
                outside = sorted(outputs - set(target.allowed_values))
                if outside:
                    problems.append(
                        f"{label}: value map '{value_map.name}' produces"
                        f" {', '.join(repr(v) for v in outside)}, but '{target.name}' allows only"
                        f" {', '.join(target.allowed_values)}"
                    )
    missing = [f for f in canonical.required_fields if f not in seen]
    if missing:
        problems.append(f"required canonical fields not mapped: {', '.join(missing)}")
    return problems
