"""Mapping one file row onto a canonical schema: transforms, value maps, then validation.

A row's every problem is collected (not just the first), each as "row N: <field>: <reason>",
with the source column it is about kept beside it. Values of sensitive fields never appear in
a reason.
"""

import re
import string
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from services.canonical.domain.files import invalid_bytes, invalid_columns, printable
from services.canonical.domain.schemas import CanonicalField, CanonicalSchema
from services.canonical.domain.source_schemas import (
    FieldMapping,
    SourceSchemaDefinition,
    Transform,
    ValueMap,
    decimal_locale,
)

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "ja", "j", "oui", "si", "sí", "wahr", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "nein", "non", "falsch", "off"})
MAX_SAMPLE_ROWS = 5


def _title(text: str) -> str:
    """Title case word by word, also after '-' (Anne-Marie), leaving apostrophes alone."""
    return "-".join(string.capwords(part, " ") if part else part for part in text.split("-"))


TRANSFORM_FUNCTIONS: dict[str, Callable[[str], str]] = {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "title": _title,
}

Value = str | int | bool | None


@dataclass(frozen=True)
class MappedRow:
    """One data row mapped onto the canonical schema, or the reasons it could not be."""

    row_number: int
    source_id: str
    tenant_code: str
    fields: dict[str, Value]
    reasons: tuple[str, ...] = ()
    # The source column each reason is about ("" for the row as a whole), parallel to reasons.
    reason_columns: tuple[str, ...] = ()
    # (field, code) of each value-map code with no entry (strict or not), for coverage.
    unmapped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RejectRow:
    """A reject as the loader stores it (build it with `RowMapper.reject`)."""

    row_number: int
    reasons: tuple[str, ...]
    reason_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    values: tuple[str, ...]


class FieldInvalid(Exception):
    """A value breaks a field's rule; the message is the reason (no sensitive value in it)."""


Step = Callable[[str], str]


def compile_step(step: Transform, field: CanonicalField) -> Step:
    """The function of one transform (validated by `transform_problems` before)."""
    if step.kind in TRANSFORM_FUNCTIONS:
        return TRANSFORM_FUNCTIONS[step.kind]
    if step.kind == "default":
        return lambda text: text if text.strip() else step.value
    if step.kind == "split":
        return lambda text: _split(text, step.separator, step.part)
    if step.kind == "regex":
        return _regex(re.compile(step.pattern), step.group, field)
    if step.kind == "date":
        return lambda text: _to_date(text, step.formats)
    if step.kind == "datetime":
        zone = zoneinfo.ZoneInfo(step.time_zone) if step.time_zone else UTC
        return lambda text: _to_datetime(text, step.formats, zone)
    if step.kind == "decimal":
        separators = decimal_locale(step.locale or "en") or (",", ".")
        return lambda text: _to_decimal(text, *separators)
    if step.kind == "boolean":
        true_words = TRUE_WORDS | {w.strip().lower() for w in step.true_words}
        false_words = FALSE_WORDS | {w.strip().lower() for w in step.false_words}
        return lambda text: _to_boolean(text, true_words, false_words)
    raise ValueError(f"unknown transform {step.kind}")


@dataclass(frozen=True)
class _Plan:
    field: CanonicalField
    mapping: FieldMapping
    column_indexes: tuple[int, ...]
    steps: tuple[Step, ...]
    value_map: ValueMap | None
    pattern: re.Pattern[str] | None
    # The one column's index when the mapping reads one column, else -1.
    single: int = -1
    required: bool = False


class RowMapper:
    """Maps rows of one source schema; build once per file, call `map` per row."""

    def __init__(self, source: SourceSchemaDefinition) -> None:
        self.source = source
        self.canonical: CanonicalSchema = source.canonical
        index = {column: i for i, column in enumerate(source.columns)}
        self.width = len(source.columns)
        self.source_id_index = index[source.source_id_column]
        self.tenant_code_index = index[source.tenant_code_column]
        self.sensitive_columns = source.sensitive_columns
        self.kept = [(c, index[c]) for c in source.kept_columns]
        self.plan = [
            _Plan(
                field=field,
                mapping=mapping,
                column_indexes=tuple(index[c] for c in mapping.columns),
                steps=tuple(compile_step(s, field) for s in mapping.steps),
                value_map=source.value_map(mapping.value_map) if mapping.value_map else None,
                pattern=re.compile(mapping.pattern) if mapping.pattern else None,
                single=index[mapping.columns[0]] if len(mapping.columns) == 1 else -1,
                required=mapping.required,
            )
            for mapping in source.field_mappings
            if not mapping.is_placeholder
            and (field := self.canonical.field_named(mapping.canonical_field)) is not None
        ]

    def map(self, row_number: int, values: list[str]) -> MappedRow:
        prefix = f"row {row_number}: "
        if len(values) != self.width:
            reason = f"expected {self.width} fields, found {len(values)}"
            return MappedRow(row_number, "", "", {}, (prefix + reason,), ("",))
        reasons: list[str] = []
        columns: list[str] = []
        spoiled = set(invalid_columns(values))
        for i in sorted(spoiled):
            column = self.source.columns[i]
            bad = invalid_bytes(values[i])
            shown = (
                "holds bytes" if column in self.sensitive_columns else f"bytes {bad.hex(' ')} are"
            )
            reasons.append(f"column '{column}': {shown} not valid {self.source.encoding}")
            columns.append(column)
        source_id = values[self.source_id_index].strip()
        if not source_id and self.source_id_index not in spoiled:
            reasons.append(f"source id (column '{self.source.source_id_column}') is empty")
            columns.append(self.source.source_id_column)
        tenant_code = values[self.tenant_code_index].strip()
        if not tenant_code and self.tenant_code_index not in spoiled:
            reasons.append(f"tenant code (column '{self.source.tenant_code_column}') is empty")
            columns.append(self.source.tenant_code_column)
        fields: dict[str, Value] = {}
        unmapped: list[tuple[str, str]] = []
        for plan in self.plan:
            if spoiled and spoiled.intersection(plan.column_indexes):
                continue
            field = plan.field
            if plan.single >= 0:
                text = values[plan.single]
            else:
                parts = [values[i] for i in plan.column_indexes]
                text = plan.mapping.separator.join(p.strip() for p in parts if p.strip())
            try:
                for step in plan.steps:
                    text = step(text)
                if plan.value_map is not None:
                    text, known = _apply_value_map(field, text, plan.value_map)
                    if not known:
                        unmapped.append((field.name, text if not field.sensitive else ""))
                        text = _unmapped_value(field, text, plan.value_map)
                if plan.required and not text.strip():
                    raise FieldInvalid("is required")
                fields[field.name] = parse_value(field, text)
                if plan.pattern is not None and text.strip() and not plan.pattern.fullmatch(text):
                    raise FieldInvalid("does not match the mapping's pattern")
            except FieldInvalid as invalid:
                reasons.append(f"{field.name}: {invalid}")
                columns.append(plan.mapping.columns[0])
        return MappedRow(
            row_number,
            source_id,
            tenant_code,
            fields,
            tuple(prefix + r for r in reasons) if reasons else (),
            tuple(columns) if columns else (),
            tuple(unmapped) if unmapped else (),
        )

    def reject(
        self,
        row: MappedRow,
        values: Sequence[str],
        extra: Sequence[tuple[str, str]] = (),
    ) -> RejectRow:
        """The reject of a row: its reasons (plus `extra` (column, reason) pairs, e.g. the
        tenant code's), the column of each, and the original values of the kept columns
        (never a sensitive or unmapped column's)."""
        columns = row.reason_columns or ("",) * len(row.reasons)
        return RejectRow(
            row_number=row.row_number,
            reasons=row.reasons + tuple(reason for _, reason in extra),
            reason_columns=tuple(columns) + tuple(column for column, _ in extra),
            value_columns=tuple(column for column, _ in self.kept),
            values=tuple(printable(values[i]) if i < len(values) else "" for _, i in self.kept),
        )


def _apply_value_map(field: CanonicalField, text: str, value_map: ValueMap) -> tuple[str, bool]:
    """(the mapped value, whether the code has an entry); empty values pass through."""
    mapped = value_map.entries.get(text)
    if mapped is not None:
        return str(mapped), True
    if not text.strip():
        return text, True
    return text, False


def _unmapped_value(field: CanonicalField, text: str, value_map: ValueMap) -> str:
    if value_map.strict:
        shown = "a code" if field.sensitive else f"code '{text}'"
        raise FieldInvalid(f"{shown} has no entry in value map '{value_map.name}'")
    return str(value_map.default_value)


def _split(text: str, separator: str, part: int) -> str:
    pieces = text.split(separator)
    index = part - 1 if part > 0 else part
    try:
        return pieces[index]
    except IndexError:
        return ""


def _regex(pattern: re.Pattern[str], group: int, field: CanonicalField) -> Step:
    def extract(text: str) -> str:
        if not text.strip():
            return text
        match = pattern.search(text)
        if match is None:
            shown = "value" if field.sensitive else repr(text)
            raise FieldInvalid(f"{shown} does not match the extract pattern")
        return match.group(group) or ""

    return extract


def _to_date(text: str, formats: tuple[str, ...]) -> str:
    if not text.strip():
        return text
    for fmt in formats or ("%Y-%m-%d",):
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    raise FieldInvalid(f"not a date in the format {' or '.join(formats or ('%Y-%m-%d',))}")


def _to_datetime(text: str, formats: tuple[str, ...], zone: zoneinfo.ZoneInfo | type[UTC]) -> str:
    if not text.strip():
        return text
    value = text.strip()
    parsed: datetime | None = None
    for fmt in formats:
        try:
            parsed = datetime.strptime(value, fmt)
            break
        except ValueError:
            continue
    if parsed is None and not formats:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        shown = " or ".join(formats) if formats else "ISO 8601"
        raise FieldInvalid(f"not a date and time in the format {shown}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)  # type: ignore[arg-type]
    return format_utc(parsed)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_decimal(text: str, groups: str, point: str) -> str:
    value = text.strip()
    if not value:
        return text
    for separator in groups:
        value = value.replace(separator, "")
    if point != ".":
        if "." in value:
            raise FieldInvalid(f"not a decimal number with {point!r} before the decimals")
        value = value.replace(point, ".")
    if not DECIMAL.fullmatch(value):
        raise FieldInvalid(f"not a decimal number with {point!r} before the decimals")
    return value


def _to_boolean(
    text: str, true_words: frozenset[str] | set[str], false_words: frozenset[str] | set[str]
) -> str:
    word = text.strip().lower()
    if not word:
        return text
    if word in true_words:
        return "true"
    if word in false_words:
        return "false"
    raise FieldInvalid("not a boolean (" + "/".join(sorted(true_words)[:4]) + " ...)")


def parse_value(field: CanonicalField, text: str) -> Value:
    """The typed value of `text` for `field`, None when empty; raises FieldInvalid."""
    if not text.strip():
        if field.required:
            raise FieldInvalid("is required")
        return None
    value: Value
    if field.type == "email":
        if not EMAIL.fullmatch(text):
            raise FieldInvalid("not an email address")
        value = text
    elif field.type == "date":
        value = _parse_date(text)
    elif field.type == "datetime":
        value = _parse_datetime(text)
    elif field.type == "integer":
        value = _parse_integer(field, text)
    elif field.type == "decimal":
        if not DECIMAL.fullmatch(text):
            raise FieldInvalid("not a decimal number (digits with an optional '.')")
        value = str(Decimal(text))
    elif field.type == "boolean":
        value = _parse_boolean(text)
    else:
        value = text
    if isinstance(value, str):
        # At most 4 UTF-8 bytes a character: encode only values that might be too long.
        if len(value) * 4 > field.max_length and len(value.encode("utf-8")) > field.max_length:
            raise FieldInvalid(f"longer than {field.max_length} bytes")
        if field.allowed_values and value not in field.allowed_values:
            shown = "value" if field.sensitive else f"'{value}'"
            raise FieldInvalid(f"{shown} is not one of {', '.join(field.allowed_values)}")
        if not field.matches_pattern(value):
            raise FieldInvalid(field.pattern_message or "has the wrong format")
    return value


def _parse_date(text: str) -> str:
    if DATE.fullmatch(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise FieldInvalid("not a date (YYYY-MM-DD)")


def _parse_datetime(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FieldInvalid("not a date and time (ISO 8601 with a time zone)") from None
    if moment.tzinfo is None:
        raise FieldInvalid(
            "a date and time without a time zone (map it with a datetime transform that"
            " names the zone)"
        )
    return format_utc(moment)


def _parse_integer(field: CanonicalField, text: str) -> int:
    if not INTEGER.fullmatch(text):
        raise FieldInvalid("not a whole number")
    value = int(text)
    if field.minimum is not None and value < field.minimum:
        raise FieldInvalid(f"must be at least {field.minimum}")
    if field.maximum is not None and value > field.maximum:
        raise FieldInvalid(f"must be at most {field.maximum}")
    return value


def _parse_boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise FieldInvalid("not a boolean (true/false, yes/no, ja/nein, 1/0)")


def to_plaintext(value: Value) -> str:
    """The text a sensitive value is encrypted as."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_plaintext(field: CanonicalField, text: str) -> Value:
    """The typed value of a decrypted sensitive value."""
    if field.type == "integer":
        return int(text)
    if field.type == "boolean":
        return text == "true"
    return text
