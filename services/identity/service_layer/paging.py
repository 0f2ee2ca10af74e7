"""Opaque page tokens (the last id seen) and page sizes."""

import base64
import binascii
import uuid

from services.runtime.errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidInput("page_size must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_token(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def after_id(token: str) -> uuid.UUID | None:
    if not token:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as error:
        raise InvalidInput("page_token is not a token this service issued") from error
