"""The OpenAPI 3.1 document, generated from the same route table and message descriptors."""

from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from gateway.routes import Route, RouteTable

REF = "#/components/schemas/"
PROBLEM = "Problem"

_INT32 = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_SFIXED32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "uint32",
}
_INT64 = {
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_SFIXED64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "uint64",
}

# Well-known types have their own JSON forms.
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.Int64Value": {"type": ["string", "integer", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "integer", "null"], "format": "uint64"},
}

ACCOUNT_HEADER = {
    "name": "X-Account",
    "in": "header",
    "required": False,
    "description": "The account to act in (id or slug); needed when you belong to several.",
    "schema": {"type": "string"},
}
TENANT_HEADER = {
    "name": "X-Tenant",
    "in": "header",
    "required": False,
    "description": "Limit the call to one tenant of the account (must be in your scope).",
    "schema": {"type": "string", "format": "uuid"},
}
CORRELATION_HEADER = {
    "name": "X-Correlation-Id",
    "in": "header",
    "required": False,
    "description": "Your id for this request, echoed back and carried through every service.",
    "schema": {"type": "string", "maxLength": 128},
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "Every error (RFC 9457 problem details).",
    "required": ["type", "title", "status", "detail", "grpc_status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "grpc_status": {"type": "string", "description": "The gRPC status name, e.g. NOT_FOUND."},
    },
}

ERROR_STATUSES = {
    "400": "Invalid request",
    "401": "Missing, expired or invalid bearer token or API key",
    "403": "Not a member of the account, account suspended or closed, or permission missing",
    "404": "Not found",
    "409": "Conflict with the current state",
    "429": "Too many requests for the account or API key (see Retry-After)",
    "500": "Internal error (quote the X-Correlation-Id)",
    "503": "A service is unavailable",
    "504": "A service did not answer in time",
}


def openapi_document(routes: RouteTable, *, title: str = "Canopy API") -> dict[str, Any]:
    """An OpenAPI 3.1 document for every route."""
    schemas = SchemaSet()
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes, key=lambda r: (r.template.openapi_path, r.http_method)):
        operations = paths.setdefault(route.template.openapi_path, {})
        operations[route.http_method.lower()] = operation(route, schemas)
    components: dict[str, Any] = {
        "schemas": {**schemas.schemas, PROBLEM: PROBLEM_SCHEMA},
        "responses": {
            f"Problem{status}": {
                "description": text,
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF + PROBLEM}}},
            }
            for status, text in {**ERROR_STATUSES, "": "Error"}.items()
        },
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A token from POST /v1/auth/token (an API key `cpy_...` is "
                "accepted here too).",
            },
            "apiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "An API key of a service account or user (`cpy_...`): acts in "
                "the key's account with the key's subset of its owner's permissions.",
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "v1",
            "description": "HTTP/JSON gateway to Canopy's services. Errors are "
            "application/problem+json. The account is the X-Account header, else the "
            "subdomain (`<slug>.<base domain>`), else the account the token or API key is for, "
            "else your only account. Each operation names the permission it needs "
            "(`x-permission`).",
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": components,
    }


def operation(route: Route, schemas: "SchemaSet") -> dict[str, Any]:
    request = route.request_class.DESCRIPTOR
    parameters: list[dict[str, Any]] = []
    for field_path in route.template.variables:
        field = field_at(request, field_path)
        parameters.append(
            {"name": field_path, "in": "path", "required": True, "schema": scalar_schema(field)}
        )
    if route.body != "*":
        parameters += query_parameters(route, request)
    if not route.public and not route.authenticated:
        parameters += [ACCOUNT_HEADER, TENANT_HEADER]
    parameters.append(CORRELATION_HEADER)
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": f"{route.service.name}.{route.method.name}",
        "tags": [route.context],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": route.response_class.DESCRIPTOR.name,
                "content": {
                    "application/json": {"schema": schemas.ref(route.response_class.DESCRIPTOR)}
                },
            },
            **{
                status: {"$ref": f"#/components/responses/Problem{status}"}
                for status in ERROR_STATUSES
                if not (route.public and status in ("403", "429"))
            },
            "default": {"$ref": "#/components/responses/Problem"},
        },
    }
    if route.body == "*":
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.ref(request)}},
        }
    elif route.body:
        field = field_at(request, route.body)
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.field_schema(field)}},
        }
    if route.public:
        op["security"] = []
        op["x-public"] = True
    elif route.authenticated:
        op["x-authenticated"] = True
        op["description"] = "Any signed-in caller, about itself; no permission needed."
    else:
        op["x-permission"] = route.permission
        op["description"] = f"Needs the permission `{route.permission}` in the account."
    return op


def query_parameters(route: Route, request: Descriptor) -> list[dict[str, Any]]:
    """Top-level scalar (and repeated scalar) fields the path and body leave to the query."""
    bound = {v.split(".")[0] for v in route.template.variables}
    if route.body:
        bound.add(route.body.split(".")[0])
    parameters = []
    for field in request.fields:
        if field.name in bound:
            continue
        if field.message_type is not None and field.message_type.full_name not in WELL_KNOWN:
            continue
        schema = scalar_schema(field)
        if field.is_repeated:
            parameters.append(
                {
                    "name": field.name,
                    "in": "query",
                    "required": is_required(field),
                    "schema": {"type": "array", "items": schema},
                    "explode": True,
                }
            )
        else:
            parameters.append(
                {
                    "name": field.name,
                    "in": "query",
                    "required": is_required(field),
                    "schema": schema,
                }
            )
    return parameters


def field_at(descriptor: Descriptor, field_path: str) -> FieldDescriptor:
    current: Descriptor | None = descriptor
    field = None
    for name in field_path.split("."):
        assert current is not None
        field = current.fields_by_name[name]
        current = field.message_type
    assert field is not None
    return field


def behaviors(field: FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def is_required(field: FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in behaviors(field)


def scalar_schema(field: FieldDescriptor) -> dict[str, Any]:
    """The JSON schema of one value of a non-message field (or a well-known type)."""
    kind = field.type
    if field.message_type is not None:
        return dict(WELL_KNOWN.get(field.message_type.full_name, {"type": "object"}))
    if field.enum_type is not None:
        return enum_schema(field.enum_type)
    if kind in _INT32:
        return {"type": "integer", "format": _INT32[kind]}
    if kind in _INT64:
        # proto3 JSON writes 64-bit integers as strings; both forms are accepted.
        return {"type": ["string", "integer"], "format": _INT64[kind]}
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = "double" if kind == FieldDescriptor.TYPE_DOUBLE else "float"
        return {"type": "number", "format": width}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    return {"type": "string"}


def enum_schema(enum: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [value.name for value in enum.values]}


class SchemaSet:
    """components.schemas: one schema per message reachable from a route, by full name."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in WELL_KNOWN:
            return dict(WELL_KNOWN[descriptor.full_name])
        if descriptor.full_name not in self.schemas:
            self.schemas[descriptor.full_name] = {}  # placeholder: recursive messages
            self.schemas[descriptor.full_name] = self.message_schema(descriptor)
        return {"$ref": REF + descriptor.full_name}

    def message_schema(self, descriptor: Descriptor) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in descriptor.fields:
            schema = self.field_schema(field)
            found = behaviors(field)
            if field_behavior_pb2.OUTPUT_ONLY in found:
                schema["readOnly"] = True
            if field_behavior_pb2.INPUT_ONLY in found:
                schema["writeOnly"] = True
            properties[field.name] = schema
            if field_behavior_pb2.REQUIRED in found:
                required.append(field.name)
        schema: dict[str, Any] = {
            "type": "object",
            "title": descriptor.name,
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def field_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            value_field = message.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._value_schema(value_field)}
        one = self._value_schema(field)
        if field.is_repeated:
            return {"type": "array", "items": one}
        return one

    def _value_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        return scalar_schema(field)
