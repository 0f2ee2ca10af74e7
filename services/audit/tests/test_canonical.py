"""Unit tests of canonical JSON: one spelling per value, whatever jsonb does to it."""

import json
import math
from decimal import Decimal

import pytest

from services.audit.domain.canonical import canonical_json, canonical_number, storable


def test_keys_are_sorted_and_nothing_is_padded() -> None:
    assert canonical_json({"b": [1, {"d": None, "c": True}], "a": "x"}) == (
        '{"a":"x","b":[1,{"c":true,"d":null}]}'
    )


def test_text_is_kept_as_utf8_characters() -> None:
    assert canonical_json({"name": "Zoë ✓ 日本 🚗"}) == '{"name":"Zoë ✓ 日本 🚗"}'
    assert canonical_json('quote " backslash \\ newline \n') == (
        '"quote \\" backslash \\\\ newline \\n"'
    )


@pytest.mark.parametrize(
    "spellings, canonical",
    [
        ((100, 100.0, 1e2, Decimal("1.00E+2")), "100"),
        ((0, 0.0, -0.0, Decimal("-0.000")), "0"),
        ((0.1, Decimal("0.10")), "0.1"),
        ((1e-7, Decimal("0.0000001")), "0.0000001"),
        ((1e100, 10**100), "1" + "0" * 100),
        ((2**70,), "1180591620717411303424"),
        ((-1.5, Decimal("-1.50")), "-1.5"),
        ((1.2345678901234567e300, 12345678901234567 * 10**284), "12345678901234567" + "0" * 284),
    ],
)
def test_a_number_has_one_spelling(spellings: tuple, canonical: str) -> None:
    assert {canonical_number(n) for n in spellings} == {canonical}


def test_json_text_read_back_hashes_the_same() -> None:
    """What json.dumps sends to jsonb and what json.loads makes of jsonb's output agree."""
    payload = {"n": [1e100, 1e-7, 0.1, 3.0, -0.0, 2**70], "s": "日本", "z": {"y": {"x": [True]}}}
    # jsonb writes numbers as plain decimals (1e100 as 1 followed by 100 zeros).
    jsonb_text = (
        '{"s": "日本", "n": [1' + "0" * 100 + ", 0.0000001, 0.1, 3.0, 0.0, 1180591620717411303424],"
        ' "z": {"y": {"x": [true]}}}'
    )
    read_back = json.loads(jsonb_text)
    assert canonical_json(storable(payload)) == canonical_json(read_back)
    assert canonical_json(json.loads(json.dumps(storable(payload)))) == canonical_json(payload)


def test_what_jsonb_cannot_hold_is_made_storable() -> None:
    value = storable({1: ("a\x00b", math.nan, math.inf, -math.inf), "lone": "\ud800x"})
    assert value == {"1": ["a\ufffdb", "NaN", "Infinity", "-Infinity"], "lone": "?x"}
    json.dumps(value, allow_nan=False).encode("utf-8")


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": object()})
    with pytest.raises(ValueError):
        canonical_number(math.nan)
