"""The one error shape and the gRPC -> HTTP table."""

import json

import grpc
import pytest

from gateway.problems import MEDIA_TYPE, Problem, from_rpc_error


class RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
        (grpc.StatusCode.DATA_LOSS, 500),
    ],
)
def test_grpc_codes_map_to_http_statuses(code: grpc.StatusCode, status: int) -> None:
    problem = from_rpc_error(RpcError(code, "details"), service="tenancy")
    assert problem.status == status
    assert problem.body()["grpc_status"] == code.name


def test_caller_facing_details_pass_through() -> None:
    problem = from_rpc_error(RpcError(grpc.StatusCode.NOT_FOUND, "tenant t1 not found"))
    assert problem.detail == "tenant t1 not found"
    assert problem.type.endswith("/not-found")


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE]
)
def test_internal_details_never_leak(code: grpc.StatusCode) -> None:
    secret = 'Exception calling application: psycopg.OperationalError password="hunter2"'
    problem = from_rpc_error(RpcError(code, secret), service="tenancy")
    assert "hunter2" not in json.dumps(problem.body())
    assert "psycopg" not in problem.detail


def test_a_problem_renders_as_problem_json() -> None:
    response = Problem(403, "account-suspended", "Account suspended", "suspended").response()
    assert response.status_code == 403
    assert response.media_type == MEDIA_TYPE
    assert json.loads(response.body) == {
        "type": "https://canopy.dev/problems/account-suspended",
        "title": "Account suspended",
        "status": 403,
        "detail": "suspended",
        "grpc_status": "PERMISSION_DENIED",
    }
