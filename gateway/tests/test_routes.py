"""The route table and path templates built from the protos' google.api.http options."""

import pytest

from gateway.routes import (
    Match,
    PathTemplate,
    RouteTable,
    TemplateError,
    build_routes,
    contract_modules,
    http_rules,
)


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return build_routes()


def test_a_variable_matches_one_segment() -> None:
    template = PathTemplate.parse("/v1/dropzones/{dropzone_id}/logins")
    assert template.match("/v1/dropzones/abc-123/logins") == {"dropzone_id": "abc-123"}
    assert template.match("/v1/dropzones/a/b/logins") is None
    assert template.match("/v1/dropzones//logins") is None
    assert template.match("/v1/dropzones/abc/logins/") is None
    assert template.openapi_path == "/v1/dropzones/{dropzone_id}/logins"


def test_a_custom_verb_is_part_of_the_path() -> None:
    template = PathTemplate.parse("/v1/audit/events:verify")
    assert template.match("/v1/audit/events:verify") == {}
    assert template.match("/v1/audit/events") is None
    assert template.match("/v1/audit/events:other") is None


def test_a_variable_does_not_swallow_a_verb() -> None:
    template = PathTemplate.parse("/v1/things/{id}:archive")
    assert template.match("/v1/things/42:archive") == {"id": "42"}
    assert PathTemplate.parse("/v1/things/{id}").match("/v1/things/42:archive") is None


def test_patterned_and_nested_variables() -> None:
    template = PathTemplate.parse("/v1/{name=accounts/*/tenants/*}")
    assert template.match("/v1/accounts/a/tenants/b") == {"name": "accounts/a/tenants/b"}
    assert template.openapi_path == "/v1/{name}"
    nested = PathTemplate.parse("/v1/files/{file.id}/rejects")
    assert nested.match("/v1/files/9/rejects") == {"file.id": "9"}
    rest = PathTemplate.parse("/v1/blobs/{path=**}")
    assert rest.match("/v1/blobs/a/b/c.csv") == {"path": "a/b/c.csv"}


@pytest.mark.parametrize("bad", ["v1/x", "/v1//x", "/v1/{x", "/v1/{x}/{x}", "/v1/{1x}", "/v1/a b"])
def test_bad_templates_fail_at_start_up(bad: str) -> None:
    with pytest.raises(TemplateError):
        PathTemplate.parse(bad)


def test_every_http_annotated_rpc_is_a_route_and_no_other(table: RouteTable) -> None:
    annotated = {
        f"{service.name}.{method.name}"
        for _, module in contract_modules()
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if http_rules(method)
    }
    assert {f"{route.service.name}.{route.method.name}" for route in table} == annotated
    assert len(annotated) >= 20
    internal = {
        "IdentityService.Resolve",
        "TenancyService.GetAccount",
        "TenancyService.GetDataKey",
        "IngestionService.ReadFileContent",
        "TenancyService.CreateAccount",
    }
    assert not internal & annotated


def test_routes_carry_method_body_messages_stub_and_access(table: RouteTable) -> None:
    found = table.match("POST", "/v1/dropzones/dz-1/logins")
    assert isinstance(found, Match)
    route = found.route
    assert found.path_params == {"dropzone_id": "dz-1"}
    assert (route.context, route.http_method, route.body) == ("ingestion", "POST", "*")
    assert route.request_class.DESCRIPTOR.full_name == "canopy.ingestion.v1.CreateSftpLoginRequest"
    assert route.response_class.DESCRIPTOR.full_name == "canopy.ingestion.v1.SftpLogin"
    assert route.stub_class.__name__ == "IngestionServiceStub"
    assert (route.permission, route.public) == ("ingestion.dropzones:write", False)
    assert route.full_method == "/canopy.ingestion.v1.IngestionService/CreateSftpLogin"
    token = table.match("POST", "/v1/auth/token")
    assert isinstance(token, Match) and token.route.public and not token.route.permission


def test_the_most_specific_route_wins_and_wrong_methods_are_listed(table: RouteTable) -> None:
    rejects = table.match("GET", "/v1/files/f1/rejects")
    assert (
        isinstance(rejects, Match) and rejects.route.operation_id == "CanonicalService.ListRejects"
    )
    file = table.match("GET", "/v1/files/f1")
    assert isinstance(file, Match) and file.route.operation_id == "IngestionService.GetFile"
    verify = table.match("POST", "/v1/audit/events:verify")
    assert isinstance(verify, Match) and verify.route.operation_id == "AuditService.VerifyChain"
    assert table.match("GET", "/v1/audit/events:verify") == ["POST"]
    assert sorted(table.match("DELETE", "/v1/tenants")) == ["GET", "POST"]
    assert table.match("GET", "/v1/unknown") == []
