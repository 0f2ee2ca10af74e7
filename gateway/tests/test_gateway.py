"""The gateway end to end against in-process gRPC doubles of identity, tenancy and audit.

The doubles run on the real runtime server, so its interceptor verifies every context token
the gateway signs and checks the permission each RPC declares.
"""

import uuid

import httpx
import pytest

from canopy.tenancy.v1 import tenancy_pb2
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.tests.doubles import Grant, SigningKey
from gateway.tests.harness import (
    TENANTS_READ,
    TENANTS_WRITE,
    Setup,
    assert_problem,
    new_member,
)
from services.runtime.context import CallContext, generate_context_key


async def test_health_and_openapi_are_served(setup: Setup) -> None:
    health = await setup.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    document = (await setup.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "/v1/audit/events:verify" in document["paths"]


async def test_a_call_without_a_token_is_unauthenticated(setup: Setup) -> None:
    response = await setup.client.get("/v1/tenants")
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_forged_token_is_unauthenticated(setup: Setup) -> None:
    member = new_member(setup)
    calls = setup.peers.tenancy.calls["ListTenants"]
    forger = SigningKey(kid=setup.key.kid)  # same key id, different key
    headers = member.headers(Authorization=f"Bearer {forger.token(member.user_id)}")
    body = assert_problem(await setup.client.get("/v1/tenants", headers=headers), 401)
    assert "signature" in body["detail"]
    assert setup.peers.tenancy.calls["ListTenants"] == calls


async def test_an_expired_token_is_unauthenticated(setup: Setup) -> None:
    member = new_member(setup)
    expired = setup.key.token(member.user_id, expires_in=-30)
    headers = member.headers(Authorization=f"Bearer {expired}")
    body = assert_problem(await setup.client.get("/v1/tenants", headers=headers), 401)
    assert "expired" in body["detail"]


@pytest.mark.parametrize(
    "claims", [{"audience": "someone-else"}, {"issuer": "not-identity"}], ids=["aud", "iss"]
)
async def test_a_token_for_someone_else_is_unauthenticated(setup: Setup, claims: dict) -> None:
    member = new_member(setup)
    token = setup.key.token(member.user_id, **claims)
    headers = member.headers(Authorization=f"Bearer {token}")
    assert_problem(await setup.client.get("/v1/tenants", headers=headers), 401)


async def test_garbage_and_non_bearer_authorization_are_unauthenticated(setup: Setup) -> None:
    for value in ("Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await setup.client.get("/v1/tenants", headers={"Authorization": value})
        assert_problem(response, 401)


async def test_forwarded_call_carries_the_resolved_context(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ, "ingestion.files:read"})
    response = await setup.client.get(
        "/v1/tenants", headers=member.headers(**{"X-Correlation-Id": "corr-123"})
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-correlation-id"] == "corr-123"
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["next_page_token"] == ""
    assert body["tenants"][0]["account_id"] == member.account.id
    ctx = setup.peers.tenancy.contexts[-1]
    assert ctx.principal_id == member.user_id
    assert ctx.principal_kind == "user"
    assert str(ctx.account_id) == member.account.id
    assert ctx.permissions == {TENANTS_READ, "ingestion.files:read"}
    assert ctx.tenant_ids is None
    assert ctx.correlation_id == "corr-123"
    assert ctx.source_address == "127.0.0.1"
    resolve_ctx = setup.peers.identity.resolve_contexts[-1]
    assert resolve_ctx.permissions == {"identity.principals:resolve"}
    assert resolve_ctx.correlation_id == "corr-123"


async def test_a_new_correlation_id_is_made_when_none_or_a_bad_one_is_sent(setup: Setup) -> None:
    member = new_member(setup)
    for headers in (member.headers(), member.headers(**{"X-Correlation-Id": "bad id\t!"})):
        response = await setup.client.get("/v1/tenants", headers=headers)
        assert response.status_code == 200
        cid = response.headers["x-correlation-id"]
        assert uuid.UUID(cid) and setup.peers.tenancy.contexts[-1].correlation_id == cid


async def test_account_by_id_or_slug_or_default(setup: Setup) -> None:
    member = new_member(setup)
    auth = {"Authorization": f"Bearer {member.token}"}
    for headers in (auth, {**auth, "X-Account": member.account.id}, member.headers()):
        response = await setup.client.get("/v1/tenants", headers=headers)
        assert response.status_code == 200, response.text
        assert str(setup.peers.tenancy.contexts[-1].account_id) == member.account.id


async def test_several_accounts_need_x_account(setup: Setup) -> None:
    member = new_member(setup)
    other = setup.peers.tenancy.add_account(f"acct-{uuid.uuid4().hex[:12]}")
    setup.peers.identity.add_member(member.user_id, other.id, Grant(frozenset({TENANTS_READ})))
    response = await setup.client.get(
        "/v1/tenants", headers={"Authorization": f"Bearer {member.token}"}
    )
    body = assert_problem(response, 400, "account-required")
    assert "X-Account" in body["detail"]
    response = await setup.client.get(
        "/v1/tenants", headers=member.headers(**{"X-Account": other.slug})
    )
    assert response.status_code == 200
    assert str(setup.peers.tenancy.contexts[-1].account_id) == other.id


async def test_an_account_the_user_is_not_in_is_forbidden_like_an_unknown_one(setup: Setup) -> None:
    member = new_member(setup)
    stranger = new_member(setup)
    calls = setup.peers.tenancy.calls["ListTenants"]
    foreign = await setup.client.get(
        "/v1/tenants", headers=member.headers(**{"X-Account": stranger.account.slug})
    )
    unknown = await setup.client.get(
        "/v1/tenants", headers=member.headers(**{"X-Account": "no-such-account"})
    )
    body = assert_problem(foreign, 403, "not-a-member")
    assert body["detail"] == "not a member of this account"
    assert unknown.json() == body
    assert setup.peers.tenancy.calls["ListTenants"] == calls


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (tenancy_pb2.ACCOUNT_STATUS_SUSPENDED, "account-suspended"),
        (tenancy_pb2.ACCOUNT_STATUS_CLOSING, "account-closing"),
        (tenancy_pb2.ACCOUNT_STATUS_CLOSED, "account-closed"),
    ],
)
async def test_an_inactive_account_is_refused_with_a_clear_problem(
    setup: Setup, status: int, kind: str
) -> None:
    member = new_member(setup, status=status)
    body = assert_problem(
        await setup.client.get("/v1/tenants", headers=member.headers()), 403, kind
    )
    assert body["title"].startswith("Account")


async def test_a_suspended_account_is_not_revealed_to_strangers(setup: Setup) -> None:
    member = new_member(setup)
    suspended = new_member(setup, status=tenancy_pb2.ACCOUNT_STATUS_SUSPENDED)
    response = await setup.client.get(
        "/v1/tenants", headers=member.headers(**{"X-Account": suspended.account.slug})
    )
    assert_problem(response, 403, "not-a-member")


async def test_a_missing_permission_is_refused_before_calling_the_service(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ})
    calls = setup.peers.tenancy.calls["CreateTenant"]
    response = await setup.client.post("/v1/tenants", json={"name": "x"}, headers=member.headers())
    body = assert_problem(response, 403, "permission-denied")
    assert TENANTS_WRITE in body["detail"]
    assert setup.peers.tenancy.calls["CreateTenant"] == calls


async def test_a_spoofed_context_header_is_ignored(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ})
    victim = new_member(setup)
    spoofed = setup.tokens.sign(
        CallContext(
            principal_id="operator",
            principal_kind="operator",
            account_id=uuid.UUID(victim.account.id),
            permissions=frozenset({TENANTS_READ, TENANTS_WRITE, "tenancy.accounts:manage"}),
        )
    )
    response = await setup.client.get(
        "/v1/tenants",
        headers=member.headers(**{"x-canopy-context": spoofed, "x-canopy-tenant": "x"}),
    )
    assert response.status_code == 200
    ctx = setup.peers.tenancy.contexts[-1]
    assert str(ctx.account_id) == member.account.id
    assert ctx.principal_id == member.user_id
    assert ctx.permissions == {TENANTS_READ}


async def test_a_spoofed_context_header_alone_is_unauthenticated(setup: Setup) -> None:
    victim = new_member(setup)
    spoofed = setup.tokens.sign(
        CallContext(
            principal_id=victim.user_id,
            principal_kind="user",
            account_id=uuid.UUID(victim.account.id),
            permissions=frozenset({TENANTS_READ}),
        )
    )
    response = await setup.client.get("/v1/tenants", headers={"x-canopy-context": spoofed})
    assert_problem(response, 401)


async def test_grpc_not_found_is_a_404_problem(setup: Setup) -> None:
    member = new_member(setup)
    tenant_id = str(uuid.uuid4())
    response = await setup.client.get(f"/v1/tenants/{tenant_id}", headers=member.headers())
    body = assert_problem(response, 404, "not-found")
    assert body["grpc_status"] == "NOT_FOUND"
    assert body["detail"] == f"tenant {tenant_id} not found"
    assert setup.peers.tenancy.requests[-1].tenant_id == tenant_id


async def test_a_body_with_an_unknown_field_is_refused(setup: Setup) -> None:
    member = new_member(setup)
    calls = setup.peers.tenancy.calls["CreateTenant"]
    response = await setup.client.post(
        "/v1/tenants", json={"name": "Leeds", "colour": "red"}, headers=member.headers()
    )
    body = assert_problem(response, 400, "invalid-argument")
    assert "colour" in body["detail"]
    assert setup.peers.tenancy.calls["CreateTenant"] == calls


async def test_a_body_is_transcoded_and_the_reply_rendered(setup: Setup) -> None:
    member = new_member(setup)
    response = await setup.client.post(
        "/v1/tenants", json={"name": "Leeds"}, headers=member.headers()
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Leeds"
    assert setup.peers.tenancy.requests[-1].name == "Leeds"


async def test_custom_verb_and_query_parameters_reach_audit(setup: Setup) -> None:
    member = new_member(setup, {"audit.events:read", "audit.events:verify"})
    verified = await setup.client.post("/v1/audit/events:verify", headers=member.headers())
    assert verified.status_code == 200, verified.text
    assert verified.json() == {
        "ok": True,
        "events_checked": "3",
        "first_bad_event_id": "",
        "reason": "",
    }
    assert str(setup.peers.audit.contexts[-1].account_id) == member.account.id
    listed = await setup.client.get(
        "/v1/audit/events?type=canopy.tenancy.tenant.created&page_size=5", headers=member.headers()
    )
    assert listed.status_code == 200, listed.text
    request = setup.peers.audit.requests[-1]
    assert (request.type, request.page_size) == ("canopy.tenancy.tenant.created", 5)
    assert listed.json()["events"][0]["type"] == "canopy.tenancy.tenant.created"
    unknown = await setup.client.get("/v1/audit/events?colour=red", headers=member.headers())
    assert "colour" in assert_problem(unknown, 400)["detail"]


async def test_tenant_scope_is_forwarded_and_x_tenant_narrows_it(setup: Setup) -> None:
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    member = new_member(setup, {TENANTS_READ}, tenant_ids={mine})
    response = await setup.client.get("/v1/tenants", headers=member.headers())
    assert response.status_code == 200
    assert setup.peers.tenancy.contexts[-1].tenant_ids == {uuid.UUID(mine)}
    response = await setup.client.get("/v1/tenants", headers=member.headers(**{"X-Tenant": other}))
    assert_problem(response, 403)
    wide = new_member(setup, {TENANTS_READ})
    response = await setup.client.get("/v1/tenants", headers=wide.headers(**{"X-Tenant": other}))
    assert_problem(response, 403)  # not a tenant of wide's account
    own = setup.peers.tenancy.add_tenant(wide.account.id)
    response = await setup.client.get("/v1/tenants", headers=wide.headers(**{"X-Tenant": own}))
    assert response.status_code == 200
    assert setup.peers.tenancy.contexts[-1].tenant_ids == {uuid.UUID(own)}


async def test_public_routes_forward_without_a_token(setup: Setup) -> None:
    jwks = await setup.client.get("/v1/auth/jwks")
    assert jwks.status_code == 200
    assert jwks.json()["keys"][0]["kid"] == setup.key.kid
    wrong = await setup.client.post(
        "/v1/auth/token", json={"email": "a@example.com", "password": "nope"}
    )
    assert assert_problem(wrong, 401)["detail"] == "invalid email or password"
    issued = await setup.client.post(
        "/v1/auth/token", json={"email": "a@example.com", "password": "correct horse"}
    )
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "Bearer"


async def test_a_rotated_signing_key_is_fetched_once(setup: Setup) -> None:
    member = new_member(setup)
    assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    rotated = SigningKey(kid=f"key-{uuid.uuid4().hex[:6]}")
    setup.peers.identity.keys.append(rotated)
    fetches = setup.peers.identity.calls["GetJwks"]
    headers = member.headers(Authorization=f"Bearer {rotated.token(member.user_id)}")
    assert (await setup.client.get("/v1/tenants", headers=headers)).status_code == 200
    assert (await setup.client.get("/v1/tenants", headers=headers)).status_code == 200
    assert setup.peers.identity.calls["GetJwks"] == fetches + 1


async def test_resolutions_are_cached_briefly(setup: Setup) -> None:
    member = new_member(setup)
    before = setup.peers.identity.calls["Resolve"], setup.peers.tenancy.calls["GetAccount"]
    for _ in range(3):
        assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    after = setup.peers.identity.calls["Resolve"], setup.peers.tenancy.calls["GetAccount"]
    assert after == (before[0] + 1, before[1] + 1)


async def test_unknown_routes_and_wrong_methods_are_problems(setup: Setup) -> None:
    assert_problem(await setup.client.get("/v1/nothing-here"), 404, "not-found")
    wrong = await setup.client.delete("/v1/tenants")
    assert_problem(wrong, 405, "method-not-allowed")
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "POST"}
    assert_problem(await setup.client.get("/v1/audit/events:verify"), 405)
    assert_problem(await setup.client.post("/healthz"), 405)


async def test_internal_rpcs_are_not_exposed(setup: Setup) -> None:
    member = new_member(setup)
    for method, path in [
        ("POST", "/v1/resolve"),
        ("GET", "/v1/accounts/" + member.account.id),
        ("GET", "/canopy.identity.v1.IdentityService/Resolve"),
    ]:
        response = await setup.client.request(method, path, headers=member.headers())
        assert_problem(response, 404)


async def test_a_down_service_is_a_503_problem() -> None:
    from devstack.ports import free_port

    config = GatewayConfig(
        context_key=generate_context_key(),
        identity_address=f"127.0.0.1:{free_port()}",
        upstream_timeout_seconds=2.0,
    )
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client,
    ):
        response = await client.get("/v1/tenants", headers={"Authorization": "Bearer a.b.c"})
        assert_problem(response, 401)
        token = SigningKey(kid="k").token("someone")
        response = await client.get("/v1/tenants", headers={"Authorization": f"Bearer {token}"})
        body = assert_problem(response, 503, "unavailable")
        assert "identity" in body["detail"]
