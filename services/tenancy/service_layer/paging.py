"""A list request's page: its size and where it starts (on the runtime's page tokens)."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from services.runtime import pages
from services.runtime.pages import Page, decode_token, paged

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: uuid.UUID | None

    @classmethod
    def parse(cls, *, page_size: int, page_token: str) -> "PageRequest":
        return cls(size=pages.page_size(page_size), after=decode_token(page_token))


def page_of(rows: list[T], request: PageRequest, id_of: Callable[[T], uuid.UUID]) -> Page[T]:
    """`rows` fetched with limit size + 1: the extra row only says that there is a next page."""
    return paged(rows, request.size, id_of)
