"""Identifiers: UUIDv7 everywhere, so keys sort by creation time."""

import uuid

import uuid_utils

from services.runtime.errors import InvalidInput


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def parse_id(value: str, *, field: str) -> uuid.UUID:
    """An id from a request, or a clear InvalidInput naming the field."""
    if not value or not value.strip():
        raise InvalidInput(f"{field} is required")
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError, TypeError):
        raise InvalidInput(f"{field} is not a valid id: {value!r}") from None
