"""Reference data: operators load versioned fixtures by natural key; every account reads them."""

import json
from pathlib import Path

from devstack.stack import Stack
from tests.e2e.conftest import canopy, new_account


async def marques(stack: Stack) -> list[dict]:
    admin = await new_account(stack, "ref")
    return (await admin.get("/v1/reference/marques"))["items"]


async def test_fixtures_load_idempotently_and_a_new_natural_key_is_a_new_row(
    stack: Stack, tmp_path: Path
) -> None:
    first = canopy(stack, "fixtures", "load")
    assert first.returncode == 0, first.stderr
    again = canopy(stack, "fixtures", "load")
    assert again.returncode == 0, again.stderr
    loaded = await marques(stack)
    assert any(m["name"] == "Audi" for m in (item.get("data", item) for item in loaded)), loaded

    extra = {"kind": "marques", "version": 2, "items": [{"code": "ZZTEST", "name": "Zed Motors"}]}
    (tmp_path / "marques.json").write_text(json.dumps(extra))
    added = canopy(stack, "fixtures", "load", str(tmp_path / "marques.json"))
    assert added.returncode == 0, added.stderr
    after = await marques(stack)
    assert len(after) == len(loaded) + 1

    dumped = canopy(stack, "fixtures", "dump", "--kind", "marques")
    assert dumped.returncode == 0, dumped.stderr
    assert "Zed Motors" in dumped.stdout and "Audi" in dumped.stdout
