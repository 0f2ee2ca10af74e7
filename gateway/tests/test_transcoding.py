"""HTTP -> request message and response -> JSON."""

import json
from typing import Any

import pytest
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
