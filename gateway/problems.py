"""The one error shape of the API (RFC 9457 problem+json) and the gRPC -> HTTP status table."""

import json
from collections.abc import Mapping

import grpc
from starlette.responses import Response

PROBLEM_BASE = "https://canopy.dev/problems/"
MEDIA_TYPE = "application/problem+json"

# One table, applied once, at the edge: (HTTP status, problem type, title).
STATUS_OF_CODE: dict[grpc.StatusCode, tuple[int, str, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid-argument", "Invalid request"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "out-of-range", "Value out of range"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated", "Authentication required"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission-denied", "Permission denied"),
    grpc.StatusCode.NOT_FOUND: (404, "not-found", "Not found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already-exists", "Already exists"),
    # The resource's current state does not allow the operation: a conflict with that state.
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed-precondition", "Operation not allowed now"),
    grpc.StatusCode.ABORTED: (409, "aborted", "Conflict, try again"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource-exhausted", "Too many requests"),
    grpc.StatusCode.CANCELLED: (499, "cancelled", "Request cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "not-implemented", "Not implemented"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable", "Service unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "deadline-exceeded", "Service timed out"),
}
INTERNAL = (500, "internal", "Internal error")

# Codes whose details a service wrote for the caller; any other code's details stay inside.
CALLER_FACING = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

# The gRPC status that names an HTTP status the gateway decides on its own.
CODE_OF_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class Problem(Exception):
    """An error the API reports; raised anywhere in the gateway, rendered once."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str = "",
        *,
        grpc_status: grpc.StatusCode | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail or title
        self.grpc_status = grpc_status or CODE_OF_STATUS.get(status, grpc.StatusCode.INTERNAL)
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.kind

    def body(self) -> dict[str, object]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "grpc_status": self.grpc_status.name,
        }

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def invalid(detail: str) -> Problem:
    return Problem(400, "invalid-argument", "Invalid request", detail)


def unauthenticated(detail: str) -> Problem:
    return Problem(
        401,
        "unauthenticated",
        "Authentication required",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="canopy"'},
    )


def forbidden(detail: str, *, kind: str = "permission-denied", title: str = "") -> Problem:
    return Problem(403, kind, title or "Permission denied", detail)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def internal() -> Problem:
    status, kind, title = INTERNAL
    return Problem(
        status,
        kind,
        title,
        "the request failed inside Canopy; quote the X-Correlation-Id when you report it",
        grpc_status=grpc.StatusCode.INTERNAL,
    )


def from_rpc_error(error: grpc.RpcError, *, service: str = "") -> Problem:
    """The problem a service's gRPC error means to an HTTP caller, never leaking internals."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    if code not in STATUS_OF_CODE:
        problem = internal()
        problem.grpc_status = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
        return problem
    status, kind, title = STATUS_OF_CODE[code]
    if code in CALLER_FACING:
        detail = (error.details() if hasattr(error, "details") else "") or title
    elif code is grpc.StatusCode.UNAVAILABLE:
        detail = f"the {service or 'upstream'} service is unavailable; try again shortly"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED:
        detail = f"the {service or 'upstream'} service did not answer in time"
    else:
        detail = title
    return Problem(status, kind, title, detail, grpc_status=code)
