"""Source schemas: one customer file layout and how its columns map onto a canonical schema.

A source schema's *staging columns* are the columns it expects every file to carry, in order
(`columns`, the header): the loader checks the header against them, the rejects file keeps
their non-sensitive values, and the schema tools keep them in step with the field mappings
(a mapping may only name a staging column; `with_missing_fields` adds unmapped placeholders).
"""

import codecs
import re
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.canonical.domain.errors import InvalidSourceSchema
from services.canonical.domain.files import AUTO_DELIMITER, Dialect
from services.canonical.domain.schemas import CANONICAL_SCHEMAS, CanonicalSchema

# Transforms without parameters may be given by name alone.
SIMPLE_TRANSFORMS = ("trim", "upper", "lower", "title")
TRANSFORMS = (
    *SIMPLE_TRANSFORMS,
    "default",
    "split",
    "regex",
    "date",
    "datetime",
    "decimal",
    "boolean",
)
# Decimal locales: language (or language-REGION) -> (group separators, decimal separator).
DECIMAL_LOCALES: dict[str, tuple[str, str]] = {
    "en": (",", "."),
    "ja": (",", "."),
    "zh": (",", "."),
    "de": (".", ","),
    "nl": (".", ","),
    "es": (".", ","),
    "it": (".", ","),
    "pt": (".", ","),
    "da": (".", ","),
    "id": (".", ","),
    "tr": (".", ","),
    "fr": (" \u00a0\u202f", ","),
    "sv": (" \u00a0\u202f", ","),
    "fi": (" \u00a0\u202f", ","),
    "nb": (" \u00a0\u202f", ","),
    "no": (" \u00a0\u202f", ","),
    "pl": (" \u00a0\u202f", ","),
    "cs": (" \u00a0\u202f", ","),
    "ru": (" \u00a0\u202f", ","),
    "de-ch": ("'\u2019", "."),
    "fr-ch": ("'\u2019", "."),
    "it-ch": ("'\u2019", "."),
}
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
MAX_PATTERN_LENGTH = 200


@dataclass(frozen=True)
class Transform:
    """One step of a field mapping; which parameters count depends on `kind`."""

    kind: str
    value: str = ""  # default: the value an empty field gets
    separator: str = ""  # split: what to split on
    part: int = 0  # split: which part, from 1 (negative: from the end)
    pattern: str = ""  # regex: what to extract
    group: int = 0  # regex: which group (0: the whole match)
    formats: tuple[str, ...] = ()  # date, datetime: strptime formats tried in order
    time_zone: str = ""  # datetime: IANA zone of values without an offset (default UTC)
    locale: str = ""  # decimal: "en" (1,234.56), "de" (1.234,56), "fr", "de-CH", ...
    true_words: tuple[str, ...] = ()  # boolean: words for true, besides the built-in ones
    false_words: tuple[str, ...] = ()


def decimal_locale(locale: str) -> tuple[str, str] | None:
    """(group separators, decimal separator) of a locale, or None when unknown."""
    name = locale.strip().lower().replace("_", "-")
    return DECIMAL_LOCALES.get(name) or DECIMAL_LOCALES.get(name.split("-")[0])


@dataclass(frozen=True)
class FieldMapping:
    """Source column(s) -> canonical field.

    Several `source_columns` are joined (non-empty values, with `separator`); a mapping with
    no column at all is an unmapped placeholder. Then `transforms` run in order, then the
    value map, then the field's checks (plus `required` and `pattern` of the mapping).
    """

    canonical_field: str
    source_column: str
    transforms: tuple[str | Transform, ...] = ()
    value_map: str = ""
    source_columns: tuple[str, ...] = ()
    separator: str = " "
    required: bool = False
    pattern: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The source columns this mapping reads (none for a placeholder)."""
        if self.source_columns:
            return self.source_columns
        return (self.source_column,) if self.source_column else ()

    @property
    def is_placeholder(self) -> bool:
        return not self.columns

    @property
    def steps(self) -> tuple[Transform, ...]:
        return tuple(t if isinstance(t, Transform) else Transform(t) for t in self.transforms)


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
    quote: str = '"'
    escape: str = ""
    header: bool = True

    @property
    def canonical(self) -> CanonicalSchema:
        return CANONICAL_SCHEMAS[self.canonical_schema]

    @property
    def dialect(self) -> Dialect:
        return Dialect(
            delimiter=self.delimiter, quote=self.quote, escape=self.escape, header=self.header
        )

    @property
    def staging_columns(self) -> tuple[str, ...]:
        """The columns every file of this schema carries (see the module docstring)."""
        return self.columns

    @property
    def sensitive_columns(self) -> frozenset[str]:
        """Columns read by a mapping onto a sensitive field: never kept in plaintext."""
        canonical = self.canonical
        return frozenset(
            column
            for m in self.field_mappings
            if (f := canonical.field_named(m.canonical_field)) is not None and f.sensitive
            for column in m.columns
        )

    @property
    def kept_columns(self) -> tuple[str, ...]:
        """The columns whose original values a reject keeps: the source id, the tenant code
        and the columns mapped onto non-sensitive fields, never a sensitive or unmapped one."""
        mapped = {c for m in self.field_mappings for c in m.columns}
        mapped |= {self.source_id_column, self.tenant_code_column}
        sensitive = self.sensitive_columns
        return tuple(c for c in self.columns if c in mapped and c not in sensitive)

    def value_map(self, name: str) -> ValueMap | None:
        return next((m for m in self.value_maps if m.name == name), None)


@dataclass(frozen=True)
class SourceSchema:
    """A source schema as an account keeps it."""

    id: uuid.UUID
    definition: SourceSchemaDefinition
    # The current (promoted) version, which loads use; `latest_version` is the newest one.
    version: int
    created_at: datetime
    updated_at: datetime
    latest_version: int = 0

    def __post_init__(self) -> None:
        if self.latest_version < self.version:
            object.__setattr__(self, "latest_version", self.version)


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
    quote: str = '"',
    escape: str = "",
    header: bool = True,
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
    if delimiter != AUTO_DELIMITER and (len(delimiter) != 1 or delimiter in '"\r\n'):
        problems.append(
            "delimiter must be one character other than a quote or a line break, or 'auto'"
        )
    if len(quote) > 1 or quote in ("\r", "\n") or (quote and quote == delimiter):
        problems.append("quote must be one character other than the delimiter, or empty")
    if len(escape) > 1 or escape in ("\r", "\n") or (escape and escape in (delimiter, quote)):
        problems.append("escape must be one character other than the delimiter and quote")
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
    mappings = tuple(_normalized(m) for m in field_mappings)
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
        quote=quote,
        escape=escape,
        header=header,
    )


def redefine(definition: SourceSchemaDefinition, **changes: object) -> SourceSchemaDefinition:
    """The definition with `changes` applied, validated again (the name stays)."""
    current = {
        "canonical_schema": definition.canonical_schema,
        "columns": definition.columns,
        "source_id_column": definition.source_id_column,
        "tenant_code_column": definition.tenant_code_column,
        "field_mappings": definition.field_mappings,
        "value_maps": definition.value_maps,
        "delimiter": definition.delimiter,
        "encoding": definition.encoding,
        "tenant_code_source": definition.tenant_code_source,
        "quote": definition.quote,
        "escape": definition.escape,
        "header": definition.header,
    }
    unknown = set(changes) - set(current)
    if unknown:
        raise InvalidSourceSchema("cannot change " + ", ".join(sorted(unknown)))
    current.update(changes)
    return define_source_schema(name=definition.name, **current)  # type: ignore[arg-type]


def with_missing_fields(
    definition: SourceSchemaDefinition,
) -> tuple[SourceSchemaDefinition, list[str]]:
    """The definition with an unmapped placeholder for every canonical field it lacks, and
    the names of the fields added (none: the definition is returned as it is)."""
    mapped = {m.canonical_field for m in definition.field_mappings}
    missing = [f.name for f in definition.canonical.fields if f.name not in mapped]
    if not missing:
        return definition, []
    placeholders = tuple(FieldMapping(canonical_field=name, source_column="") for name in missing)
    return replace(definition, field_mappings=definition.field_mappings + placeholders), missing


def _normalized(mapping: FieldMapping) -> FieldMapping:
    return FieldMapping(
        canonical_field=mapping.canonical_field.strip(),
        source_column=mapping.source_column.strip(),
        transforms=tuple(
            t.strip().lower() if isinstance(t, str) else replace(t, kind=t.kind.strip().lower())
            for t in mapping.transforms
        ),
        value_map=mapping.value_map.strip(),
        source_columns=tuple(c.strip() for c in mapping.source_columns),
        separator=mapping.separator,
        required=mapping.required,
        pattern=mapping.pattern,
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


def _pattern_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"pattern is longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re.compile(pattern)
    except re.error as error:
        return f"pattern {pattern!r} is not a regular expression ({error})"
    return None


def transform_problems(step: Transform) -> list[str]:
    """What is wrong with one transform's parameters (empty when nothing)."""
    kind = step.kind
    if kind not in TRANSFORMS:
        return [f"unknown transforms {kind}"]
    problems = []
    if kind == "default" and not step.value:
        problems.append("default needs a value")
    if kind == "split" and (not step.separator or step.part == 0):
        problems.append("split needs a separator and a part (1 for the first, -1 for the last)")
    if kind == "regex":
        problem = _pattern_problem(step.pattern) if step.pattern else "regex needs a pattern"
        if problem:
            problems.append(problem)
        elif not 0 <= step.group <= re.compile(step.pattern).groups:
            problems.append(f"regex pattern has no group {step.group}")
    if kind in ("date", "datetime"):
        for fmt in step.formats:
            if "%" not in fmt:
                problems.append(f"{kind} format {fmt!r} has no % directive")
    if kind == "datetime" and step.time_zone:
        try:
            zoneinfo.ZoneInfo(step.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"time zone {step.time_zone!r} is unknown (use an IANA name)")
    if kind == "decimal" and step.locale and decimal_locale(step.locale) is None:
        known = ", ".join(sorted(DECIMAL_LOCALES))
        problems.append(f"decimal locale {step.locale!r} is unknown (use one of: {known})")
    if kind == "boolean" and set(step.true_words) & set(step.false_words):
        problems.append("boolean true_words and false_words overlap")
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
    mapped: set[str] = set()
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
        if not mapping.is_placeholder:
            mapped.add(mapping.canonical_field)
        for column in mapping.columns:
            if column not in columns:
                problems.append(f"{label}: source column '{column}' is not one of the columns")
        unknown = [s.kind for s in mapping.steps if s.kind not in TRANSFORMS]
        if unknown:
            problems.append(
                f"{label}: unknown transforms {', '.join(unknown)} (use {', '.join(TRANSFORMS)})"
            )
        for step in mapping.steps:
            if step.kind in TRANSFORMS:
                problems += [f"{label}: {p}" for p in transform_problems(step)]
        if mapping.pattern and (problem := _pattern_problem(mapping.pattern)):
            problems.append(f"{label}: {problem}")
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
    missing = [f for f in canonical.required_fields if f not in mapped]
    if missing:
        problems.append(f"required canonical fields not mapped: {', '.join(missing)}")
    return problems
