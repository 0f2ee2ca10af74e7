"""Identifiers: UUIDv7 everywhere, so keys sort by creation time."""

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def parse_id(value: str, *, what: str) -> uuid.UUID:
    """An id from a request, or a clear InvalidInput naming the field."""
    from services.runtime.errors import InvalidInput

    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{what} is not a valid id") from None
