"""Canonical JSON: one byte string per JSON value, stable through a round trip via jsonb.

PostgreSQL's jsonb keeps a number's value but not its spelling (`1e2` comes back as `100`)
and reorders keys, so the hash input never depends on either: keys are sorted and every
number is written as its exact decimal value without exponent or trailing zeros. What
jsonb cannot hold at all (NUL characters, lone surrogates, NaN and infinities) is made
storable before the first hash, so the value hashed is the value stored.
"""

import json
import math
from decimal import Context, Decimal
from typing import Any

JsonValue = Any  # None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]


def storable_text(text: str) -> str:
    """`text` as PostgreSQL can keep it: no NUL, valid UTF-8 (lone surrogates replaced)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def storable(value: JsonValue) -> JsonValue:
    """A JSON value jsonb keeps exactly (up to number spelling and key order)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, dict):
        return {storable_text(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: JsonValue) -> str:
    """Sorted keys, no whitespace, UTF-8 characters as themselves, numbers as exact decimals."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: JsonValue, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int | float | Decimal):
        out.append(canonical_number(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(sorted(value)):
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_number(value: int | float | Decimal) -> str:
    """The exact decimal value: `1e2`, `100`, `100.0` and `1.00E+2` all read `100`."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinities are not JSON numbers")
        # repr is the shortest spelling that reads back as the same float, and the one
        # json.dumps sends to the database.
        value = Decimal(repr(value))
    if not value.is_finite():
        raise ValueError("NaN and infinities are not JSON numbers")
    if value.is_zero():
        return "0"
    exact = Context(prec=max(28, len(value.as_tuple().digits)))
    return format(value.normalize(exact), "f")
