"""Paging for every List RPC: sizes within bounds and opaque tokens naming the last item seen."""

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
class Page(Generic[T]):
    items: list[T]
    next_token: str = ""


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidInput("page_size cannot be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def decode_token(token: str) -> uuid.UUID | None:
    if not token:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidInput("page_token is not valid") from None


def paged(rows: list[T], size: int, id_of: Callable[[T], uuid.UUID]) -> Page[T]:
    """A page from `rows` fetched with one extra row, which tells whether another page follows."""
    if len(rows) <= size:
        return Page(rows)
    items = rows[:size]
    return Page(items, encode_token(id_of(items[-1])))


def next_token(items: list, limit: int) -> str:
    """A token for the page after `items` when it is full (there may be more), else ""."""
    return encode_token(items[-1].id) if len(items) == limit else ""
