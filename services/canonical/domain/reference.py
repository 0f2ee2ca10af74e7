"""Reference data: global standard data (marques, brands, currencies, countries) as fixtures.

A fixture file holds one kind at one version; each item is keyed by its natural key (a code
that means the same everywhere), so loading is idempotent and a new natural key is a new row,
never an update of another row by id.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.runtime.errors import InvalidInput

# kind -> the item field that is its natural key
KINDS: dict[str, str] = {
    "marques": "code",
    "brands": "code",
    "currencies": "code",
    "countries": "alpha2",
}
MAX_ITEMS = 10_000


class InvalidFixture(InvalidInput):
    """A fixture breaks a rule; the message names every problem."""


@dataclass(frozen=True)
class ReferenceItem:
    kind: str
    natural_key: str
    data: Mapping[str, Any]
    fixture_version: int


def reference_item(
    *, kind: str, natural_key: str, data: Mapping[str, Any], fixture_version: int
) -> ReferenceItem:
    """An item to load; an empty natural key is taken from the kind's key field of `data`."""
    plain = {key: _plain(value) for key, value in data.items()}
    if not natural_key and kind in KINDS:
        natural_key = str(plain.get(KINDS[kind], ""))
    return ReferenceItem(kind, natural_key, plain, fixture_version)


def _plain(value: Any) -> Any:
    """Whole numbers as integers (JSON through protobuf Struct turns 2 into 2.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidFixture(f"unknown reference kind '{kind}' (known: {', '.join(KINDS)})")
    return kind


def items_of_fixture(fixture: Mapping[str, Any]) -> list[ReferenceItem]:
    """The items of one fixture file: {"kind", "version", "items": [{...}, ...]}."""
    kind = check_kind(str(fixture.get("kind", "")))
    version = fixture.get("version")
    if not isinstance(version, int) or version < 1:
        raise InvalidFixture(f"fixture of '{kind}' needs a version (a positive integer)")
    items = fixture.get("items")
    if not isinstance(items, list):
        raise InvalidFixture(f"fixture of '{kind}' needs a list of items")
    key = KINDS[kind]
    return check_items(
        ReferenceItem(
            kind=kind,
            natural_key=str(item.get(key, "")) if isinstance(item, dict) else "",
            data=item if isinstance(item, dict) else {},
            fixture_version=version,
        )
        for item in items
    )


def check_items(items: Iterable[ReferenceItem]) -> list[ReferenceItem]:
    """Validate items to load: known kinds, natural keys present, matching and unique."""
    checked = list(items)
    problems: list[str] = []
    if len(checked) > MAX_ITEMS:
        problems.append(f"at most {MAX_ITEMS} items at once")
    seen: set[tuple[str, str]] = set()
    for number, item in enumerate(checked, start=1):
        if item.kind not in KINDS:
            problems.append(f"item {number}: unknown kind '{item.kind}'")
            continue
        key = KINDS[item.kind]
        if not item.natural_key.strip():
            problems.append(f"item {number} of '{item.kind}': '{key}' (its natural key) is empty")
        elif str(item.data.get(key, "")) != item.natural_key:
            problems.append(
                f"item {number} of '{item.kind}': natural key '{item.natural_key}' is not its"
                f" '{key}'"
            )
        if (item.kind, item.natural_key) in seen:
            problems.append(f"'{item.kind}' '{item.natural_key}' is given twice")
        seen.add((item.kind, item.natural_key))
        if item.fixture_version < 1:
            problems.append(f"item {number}: fixture_version must be positive")
    if problems:
        raise InvalidFixture("invalid fixtures: " + "; ".join(problems[:20]))
    return checked


def fixture_of_items(kind: str, items: Iterable[ReferenceItem]) -> dict[str, Any]:
    """One fixture file's content for the items of `kind` (the inverse of items_of_fixture)."""
    chosen = sorted((i for i in items if i.kind == kind), key=lambda i: i.natural_key)
    return {
        "kind": kind,
        "version": max((i.fixture_version for i in chosen), default=1),
        "items": [dict(i.data) for i in chosen],
    }
