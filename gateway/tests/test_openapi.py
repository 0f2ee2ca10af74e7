"""The OpenAPI document generated from the route table and the message descriptors."""

from typing import Any

import pytest

from gateway.openapi import openapi_document
from gateway.routes import build_routes, contract_modules, http_rules


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(build_routes())


def operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }


def test_every_http_annotated_rpc_appears_with_its_permission(document: dict[str, Any]) -> None:
    ops = operations(document)
    for _, module in contract_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                operation_id = f"{service.name}.{method.name}"
                if not http_rules(method):
                    assert operation_id not in ops, f"internal RPC {operation_id} is exposed"
                    continue
                _, _, op = ops[operation_id]
                if op.get("x-public"):
                    assert op["security"] == []
                elif op.get("x-authenticated"):
                    assert "x-permission" not in op, operation_id
                    assert "X-Account" not in {p["name"] for p in op["parameters"]}
                else:
                    assert op["x-permission"], operation_id
                    assert op["x-permission"] in op["description"]
    assert ops["TenancyService.ListTenants"][2]["x-permission"] == "tenancy.tenants:read"
    assert ops["AuditService.VerifyChain"][:2] == ("post", "/v1/audit/events:verify")
    for internal in ("IdentityService.Resolve", "TenancyService.GetAccount"):
        assert internal not in ops


def test_document_shape(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header"}
    assert schemes["apiKey"]["name"] == "X-API-Key"
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "Problem" in document["components"]["schemas"]


def test_path_query_and_body_parameters(document: dict[str, Any]) -> None:
    ops = operations(document)
    _, path, login = ops["IngestionService.CreateSftpLogin"]
    assert path == "/v1/dropzones/{dropzone_id}/logins"
    params = {(p["in"], p["name"]): p for p in login["parameters"]}
    assert params[("path", "dropzone_id")]["required"] is True
    assert login["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/canopy.ingestion.v1.CreateSftpLoginRequest"
    }
    _, _, events = ops["AuditService.ListEvents"]
    query = {p["name"]: p for p in events["parameters"] if p["in"] == "query"}
    assert set(query) == {"page_size", "page_token", "type"}
    assert query["page_size"]["schema"] == {"type": "integer", "format": "int32"}
    assert "requestBody" not in events
    responses = events["responses"]
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "canopy.audit.v1.ListEventsResponse"
    )
    assert responses["404"] == {"$ref": "#/components/responses/Problem404"}


def test_schemas_follow_the_messages(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    request = schemas["canopy.ingestion.v1.CreateSftpLoginRequest"]
    assert request["required"] == ["dropzone_id", "username", "password"]
    assert request["properties"]["password"]["writeOnly"] is True
    dropzone = schemas["canopy.ingestion.v1.CreateDropZoneRequest"]
    assert dropzone["properties"]["routes"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/canopy.ingestion.v1.Route"},
    }
    assert "canopy.ingestion.v1.Route" in schemas
    file = schemas["canopy.ingestion.v1.IngestedFile"]["properties"]
    assert file["status"]["enum"][0] == "FILE_STATUS_UNSPECIFIED"
    assert file["received_at"] == {"type": "string", "format": "date-time"}
    assert file["size_bytes"]["format"] == "int64"
    record = schemas["canopy.canonical.v1.Record"]["properties"]
    assert record["fields"]["type"] == "object"
    value_map = schemas["canopy.canonical.v1.ValueMap"]["properties"]
    assert value_map["entries"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_required_fields_come_from_field_behavior(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "name" in schemas["canopy.tenancy.v1.CreateTenantRequest"]["required"]
    assert "required" not in schemas["canopy.tenancy.v1.Tenant"]


def test_the_docs_page_is_self_contained(document: dict[str, Any]) -> None:
    import re

    from gateway.docs import CONTENT_SECURITY_POLICY, docs_page

    page = docs_page(document)
    assert page.startswith("<!doctype html>")
    outside = re.findall(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page)
    assert outside == []
    assert "<script src" not in page and "<link" not in page
    assert page.count("</script>") == 2  # the embedded document cannot close its element
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
