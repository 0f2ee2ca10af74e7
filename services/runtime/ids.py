"""Identifiers: UUIDv7 everywhere, so keys sort by creation time."""

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
