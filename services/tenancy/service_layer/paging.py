"""Opaque page tokens (the last id seen) and page sizes."""

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services.runtime.errors import InvalidInput

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: uuid.UUID | None

    @classmethod
    def parse(cls, *, page_size: int, page_token: str) -> "PageRequest":
        if page_size < 0:
            raise InvalidInput("page_size must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        return cls(size=size, after=decode_token(page_token) if page_token else None)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def encode_token(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_token(token: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidInput("page_token is not valid; pass the next_page_token you got") from None


def page_of(rows: list[T], request: PageRequest, id_of: Callable[[T], uuid.UUID]) -> Page[T]:
    """`rows` fetched with limit size + 1: the extra row only says that there is a next page."""
    if len(rows) > request.size:
        rows = rows[: request.size]
        return Page(rows, encode_token(id_of(rows[-1])))
    return Page(rows, "")
