"""HTTP -> request message and response -> JSON."""

import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from canopy.audit.v1 import audit_pb2
from canopy.ingestion.v1 import ingestion_pb2
from gateway.problems import Problem
from gateway.routes import Match, Route, RouteTable, build_routes
from gateway.transcoding import json_of, request_of


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return build_routes()


def route(table: RouteTable, method: str, path: str) -> tuple[Route, dict[str, str]]:
    found = table.match(method, path)
    assert isinstance(found, Match)
    return found.route, found.path_params


def transcode(
    table: RouteTable,
    method: str,
    path: str,
    *,
    body: object = None,
    query: list[tuple[str, str]] | None = None,
) -> Message:
    r, params = route(table, method, path)
    if isinstance(body, bytes):
        raw = body
    else:
        raw = b"" if body is None else json.dumps(body).encode()
    return request_of(r, path_params=params, query=query or [], body=raw)


def problem_of(table: RouteTable, method: str, path: str, **kwargs: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        transcode(table, method, path, **kwargs)
    assert raised.value.status == 400
    return raised.value


def test_body_and_path_make_the_request(table: RouteTable) -> None:
    request = transcode(
        table, "POST", "/v1/dropzones/dz-9/logins", body={"username": "u", "password": "p"}
    )
    assert request == ingestion_pb2.CreateSftpLoginRequest(
        dropzone_id="dz-9", username="u", password="p"
    )


def test_json_names_are_accepted_in_the_body(table: RouteTable) -> None:
    request = transcode(
        table,
        "POST",
        "/v1/dropzones",
        body={
            "name": "z",
            "tenantIds": ["t"],
            "routes": [{"pattern": "*.csv", "sourceSchema": "s"}],
        },
    )
    assert request.routes[0].source_schema == "s" and list(request.tenant_ids) == ["t"]


def test_an_unknown_field_is_refused_by_name(table: RouteTable) -> None:
    problem = problem_of(table, "POST", "/v1/dropzones", body={"name": "z", "colour": "red"})
    assert '"colour"' in problem.detail


def test_an_unknown_nested_field_is_refused_with_its_path(table: RouteTable) -> None:
    body = {"name": "z", "routes": [{"pattern": "*.csv", "source_schema": "s", "oops": 1}]}
    problem = problem_of(table, "POST", "/v1/dropzones", body=body)
    assert '"routes[0].oops"' in problem.detail


def test_wrong_types_and_bad_json_are_refused(table: RouteTable) -> None:
    assert "name" in problem_of(table, "POST", "/v1/dropzones", body={"name": 5}).detail
    assert "JSON" in problem_of(table, "POST", "/v1/dropzones", body=b"{nope").detail
    assert "object" in problem_of(table, "POST", "/v1/dropzones", body=[1, 2]).detail


def test_a_body_that_contradicts_the_path_is_refused(table: RouteTable) -> None:
    body = {"dropzone_id": "other", "username": "u"}
    problem = problem_of(table, "POST", "/v1/dropzones/dz-9/logins", body=body)
    assert "dropzone_id" in problem.detail
    agreeing = transcode(
        table, "POST", "/v1/dropzones/dz-9/logins", body={"dropzoneId": "dz-9", "username": "u"}
    )
    assert agreeing.dropzone_id == "dz-9"


def test_query_parameters_fill_get_requests(table: RouteTable) -> None:
    query = [("page_size", "25"), ("page_token", "abc"), ("type", "canopy.x.y.z")]
    request = transcode(table, "GET", "/v1/audit/events", query=query)
    assert request == audit_pb2.ListEventsRequest(
        page_size=25, page_token="abc", type="canopy.x.y.z"
    )
    camel = transcode(table, "GET", "/v1/audit/events", query=[("pageSize", "3")])
    assert camel.page_size == 3
    files = transcode(table, "GET", "/v1/files/f-1/rejects", query=[("page_size", "2")])
    assert (files.file_id, files.page_size) == ("f-1", 2)


def test_bad_query_parameters_are_refused_by_name(table: RouteTable) -> None:
    unknown = problem_of(table, "GET", "/v1/audit/events", query=[("colour", "red")])
    assert '"colour"' in unknown.detail
    not_int = problem_of(table, "GET", "/v1/audit/events", query=[("page_size", "many")])
    assert "page_size" in not_int.detail
    twice = problem_of(table, "GET", "/v1/audit/events", query=[("type", "a"), ("type", "b")])
    assert "more than once" in twice.detail
    path_again = problem_of(table, "GET", "/v1/files/f-1/rejects", query=[("file_id", "f-2")])
    assert "file_id" in path_again.detail


def test_a_body_on_a_get_is_ignored(table: RouteTable) -> None:
    request = transcode(table, "GET", "/v1/audit/events", body={"whatever": 1})
    assert request == audit_pb2.ListEventsRequest()


def test_responses_render_every_field_by_proto_name(table: RouteTable) -> None:
    rendered = json_of(ingestion_pb2.IngestedFile(id="f", size_bytes=10, status=3))
    assert rendered["id"] == "f"
    assert rendered["size_bytes"] == "10"
    assert rendered["status"] == "FILE_STATUS_LOADED"
    assert rendered["duplicate_of"] == "" and rendered["rows_rejected"] == "0"
    assert json_of(ingestion_pb2.ListFilesResponse()) == {"files": [], "next_page_token": ""}


def filled(message: Message, rng: random.Random, depth: int = 0) -> Message:
    """`message` with a random value in every field (nested messages to a few levels)."""
    name = message.DESCRIPTOR.full_name
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        message.seconds = rng.randint(0, 4_000_000_000)  # type: ignore[attr-defined]
        message.nanos = rng.choice([0, 1_000, 123_000_000, 999_999_999])  # type: ignore[attr-defined]
        return message
    if message.DESCRIPTOR.file.package == "google.protobuf":
        return message  # other well-known types go through json_format itself
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and rng.random() < 0.5:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(rng.randint(0, 2)):
                key = scalar(key_field, rng)
                if value_field.message_type is not None:
                    if depth < 3:
                        filled(getattr(message, field.name)[key], rng, depth + 1)
                else:
                    getattr(message, field.name)[key] = scalar(value_field, rng)
            continue
        if field.message_type is not None:
            if depth >= 3 or rng.random() < 0.2:
                continue
            if field.is_repeated:
                for _ in range(rng.randint(0, 2)):
                    filled(getattr(message, field.name).add(), rng, depth + 1)
            else:
                getattr(message, field.name).SetInParent()
                filled(getattr(message, field.name), rng, depth + 1)
            continue
        if field.is_repeated:
            getattr(message, field.name).extend(scalar(field, rng) for _ in range(2))
        elif rng.random() < 0.8:
            setattr(message, field.name, scalar(field, rng))
    return message


def scalar(field: Any, rng: random.Random) -> Any:
    kind = field.type
    if field.enum_type is not None:
        numbers = [v.number for v in field.enum_type.values]
        return rng.choice([*numbers, max(numbers) + 7])  # an unknown value too
    if kind == field.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == field.TYPE_STRING:
        return rng.choice(["", "a", "Ünïcode ✓", "x" * 40])
    if kind == field.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 9))
    if kind in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        return rng.choice([0.0, 1.5, -2.25, 0.1, float("inf"), float("nan")])
    if kind in (field.TYPE_UINT32, field.TYPE_FIXED32, field.TYPE_UINT64, field.TYPE_FIXED64):
        return rng.randint(0, 2**31)
    return rng.randint(-(2**31), 2**31)


def test_json_of_equals_json_format_for_every_response_of_the_api(table: RouteTable) -> None:
    def normal(value: Any) -> Any:  # NaN != NaN: compare the JSON text
        return json.dumps(value, sort_keys=True)

    rng = random.Random(20261122)
    classes = {r.response_class for r in table} | {r.request_class for r in table}
    assert len(classes) > 50
    for cls in sorted(classes, key=lambda c: c.DESCRIPTOR.full_name):
        for _ in range(5):
            message = filled(cls(), rng)
            expected = json_format.MessageToDict(
                message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            assert normal(json_of(message)) == normal(expected), cls.DESCRIPTOR.full_name
        assert json_of(cls()) == json_format.MessageToDict(
            cls(), preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
