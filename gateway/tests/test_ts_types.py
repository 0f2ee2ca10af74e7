"""The TypeScript types generated from the protos cover every message, enum and operation."""

import importlib.util
from pathlib import Path

from gateway.routes import build_routes

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_ts_types.py"


def test_every_operation_and_its_messages_have_types() -> None:
    spec = importlib.util.spec_from_file_location("gen_ts_types", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.generate()
    for route in build_routes():
        assert f'"{route.operation_id}": {{ method: "{route.http_method}"' in text
        for message in (route.request_class, route.response_class):
            assert f"export interface {message.DESCRIPTOR.name} {{" in text
    assert 'export type FileStatus = "FILE_STATUS_UNSPECIFIED"' in text
    assert "    size_bytes: string;" in text  # int64 as a string, proto field names
