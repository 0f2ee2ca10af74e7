"""Mapping one file row onto a canonical schema: transforms, value maps, then validation.

A row's every problem is collected (not just the first), each as "row N: <field>: <reason>".
Values of sensitive fields never appear in a reason.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from services.canonical.domain.schemas import CanonicalField, CanonicalSchema
from services.canonical.domain.source_schemas import SourceSchemaDefinition, ValueMap

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INTEGER = re.compile(r"[+-]?\d+")
DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})

TRANSFORM_FUNCTIONS = {"trim": str.strip, "upper": str.upper, "lower": str.lower}

Value = str | int | bool | None


@dataclass(frozen=True)
class MappedRow:
    """One data row mapped onto the canonical schema, or the reasons it could not be."""

    row_number: int
    source_id: str
    tenant_code: str
    fields: dict[str, Value]
    reasons: tuple[str, ...] = ()


class FieldInvalid(Exception):
    """A value breaks a field's rule; the message is the reason (no sensitive value in it)."""


class RowMapper:
    """Maps rows of one source schema; build once per file, call `map` per row."""

    def __init__(self, source: SourceSchemaDefinition) -> None:
        self.source = source
        self.canonical: CanonicalSchema = source.canonical
        index = {column: i for i, column in enumerate(source.columns)}
        self.width = len(source.columns)
        self.source_id_index = index[source.source_id_column]
        self.tenant_code_index = index[source.tenant_code_column]
        self.plan = [
            (
                field,
                index[mapping.source_column],
                [TRANSFORM_FUNCTIONS[t] for t in mapping.transforms],
                source.value_map(mapping.value_map) if mapping.value_map else None,
            )
            for mapping in source.field_mappings
            if (field := self.canonical.field_named(mapping.canonical_field)) is not None
        ]

    def map(self, row_number: int, values: list[str]) -> MappedRow:
        prefix = f"row {row_number}: "
        if len(values) != self.width:
            reason = f"expected {self.width} fields, found {len(values)}"
            return MappedRow(row_number, "", "", {}, (prefix + reason,))
        reasons: list[str] = []
        source_id = values[self.source_id_index].strip()
        if not source_id:
            reasons.append(f"source id (column '{self.source.source_id_column}') is empty")
        tenant_code = values[self.tenant_code_index].strip()
        if not tenant_code:
            reasons.append(f"tenant code (column '{self.source.tenant_code_column}') is empty")
        fields: dict[str, Value] = {}
        for field, column_index, transforms, value_map in self.plan:
            text = values[column_index]
            for transform in transforms:
                text = transform(text)
            try:
                if value_map is not None:
                    text = _apply_value_map(field, text, value_map)
                fields[field.name] = parse_value(field, text)
            except FieldInvalid as invalid:
                reasons.append(f"{field.name}: {invalid}")
        return MappedRow(
            row_number, source_id, tenant_code, fields, tuple(prefix + r for r in reasons)
        )


def _apply_value_map(field: CanonicalField, text: str, value_map: ValueMap) -> str:
    mapped = value_map.entries.get(text)
    if mapped is not None:
        return str(mapped)
    if not text.strip():
        return text
    if value_map.strict:
        shown = "a code" if field.sensitive else f"code '{text}'"
        raise FieldInvalid(f"{shown} has no entry in value map '{value_map.name}'")
    return str(value_map.default_value)


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
        if len(value.encode("utf-8")) > field.max_length:
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
    raise FieldInvalid("not a boolean (true/false, yes/no, 1/0)")


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
