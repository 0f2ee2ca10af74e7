"""Checks shared by the names and patterns people give us."""

import uuid
from collections.abc import Iterable

from services.runtime.errors import InvalidInput
from services.runtime.ids import parse_id


def has_control_characters(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def clean_text(value: str, *, field: str, max_length: int) -> str:
    """`value` stripped; refused when empty, too long or holding control characters."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInput(f"{field} is required")
    if len(cleaned) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters")
    if has_control_characters(cleaned):
        raise InvalidInput(f"{field} must not contain control characters")
    return cleaned


def parse_ids(values: Iterable[str], *, field: str) -> tuple[uuid.UUID, ...]:
    """Ids in the order given, each once."""
    return tuple(dict.fromkeys(parse_id(v, field=field) for v in values))
