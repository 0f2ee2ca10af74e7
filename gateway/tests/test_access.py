"""Who acts where: account by header, subdomain or token; permission caching that never outlives a
revoke; API keys; calls about the caller itself; rate limits, CORS and the docs page."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.tests.doubles import Grant, Peers, serving_peers
from gateway.tests.harness import (
    TENANTS_READ,
    TENANTS_WRITE,
    Member,
    Setup,
    assert_problem,
    new_member,
)
from services.runtime.context import generate_context_key

BASE = "canopy.localhost"


def bare(member: Member, **extra: str) -> dict[str, str]:
    """The member's token and nothing naming an account."""
    return {"Authorization": f"Bearer {member.token}", **extra}


def second_account(setup: Setup, member: Member) -> Any:
    other = setup.peers.tenancy.add_account(f"acct-{uuid.uuid4().hex[:12]}")
    setup.peers.identity.add_member(member.user_id, other.id, Grant(frozenset({TENANTS_READ})))
    return other


def last_account(setup: Setup) -> str:
    return str(setup.peers.tenancy.contexts[-1].account_id)


async def test_the_subdomain_names_the_account(setup: Setup) -> None:
    member = new_member(setup)
    other = second_account(setup, member)
    for slug, expected in ((member.account.slug, member.account.id), (other.slug, other.id)):
        response = await setup.client.get(
            "/v1/tenants", headers=bare(member, Host=f"{slug}.{BASE}:8080")
        )
        assert response.status_code == 200, response.text
        assert last_account(setup) == expected
    # The base domain itself, reserved names and other hosts name no account.
    for host in (BASE, f"api.{BASE}", "gateway.internal"):
        response = await setup.client.get("/v1/tenants", headers=bare(member, Host=host))
        assert_problem(response, 400, "account-required")


async def test_a_subdomain_that_disagrees_with_x_account_is_refused(setup: Setup) -> None:
    member = new_member(setup)
    other = second_account(setup, member)
    calls = setup.peers.tenancy.calls["ListTenants"]
    disagree = bare(member, Host=f"{other.slug}.{BASE}", **{"X-Account": member.account.slug})
    body = assert_problem(await setup.client.get("/v1/tenants", headers=disagree), 400)
    assert body["type"].endswith("/account-conflict")
    agree = bare(member, Host=f"{member.account.slug}.{BASE}", **{"X-Account": member.account.id})
    assert (await setup.client.get("/v1/tenants", headers=agree)).status_code == 200
    assert setup.peers.tenancy.calls["ListTenants"] == calls + 1
    stranger = bare(member, Host=f"no-such-account.{BASE}")
    assert_problem(await setup.client.get("/v1/tenants", headers=stranger), 403, "not-a-member")


async def test_a_token_bound_to_an_account_acts_only_there(setup: Setup) -> None:
    member = new_member(setup)
    other = second_account(setup, member)
    bound = setup.key.token(member.user_id, account=other.id)
    headers = {"Authorization": f"Bearer {bound}"}
    response = await setup.client.get("/v1/tenants", headers=headers)
    assert response.status_code == 200, response.text
    assert last_account(setup) == other.id
    for elsewhere in (
        {"X-Account": member.account.slug},
        {"Host": f"{member.account.slug}.{BASE}"},
    ):
        response = await setup.client.get("/v1/tenants", headers={**headers, **elsewhere})
        assert_problem(response, 403, "account-mismatch")
    same = {**headers, "Host": f"{other.slug}.{BASE}", "X-Account": other.id}
    assert (await setup.client.get("/v1/tenants", headers=same)).status_code == 200


async def test_a_bound_token_does_not_reveal_whether_another_account_exists(setup: Setup) -> None:
    member = new_member(setup)
    bound = setup.key.token(member.user_id, account=member.account.id)
    headers = {"Authorization": f"Bearer {bound}"}
    stranger = new_member(setup)
    answers = [
        (await setup.client.get("/v1/tenants", headers={**headers, "X-Account": name})).json()
        for name in (stranger.account.slug, "no-such-account")
    ]
    assert answers[0] == answers[1]


async def test_a_committed_revoke_is_never_answered_allow_afterwards(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ})
    identity = setup.peers.identity
    assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    reads = identity.calls["GetAuthzVersion"]

    async def call() -> int:
        return (await setup.client.get("/v1/tenants", headers=member.headers())).status_code

    identity.version_delay = 0.05
    try:
        for _ in range(3):
            before = [asyncio.ensure_future(call()) for _ in range(40)]
            await asyncio.sleep(0.02)  # their version read has been taken, not yet answered
            identity.add_member(member.user_id, member.account.id, Grant(frozenset()))  # revoke
            after = await asyncio.gather(*(call() for _ in range(40)))
            assert set(after) == {403}, after
            assert set(await asyncio.gather(*before)) <= {200, 403}
            restored = Grant(frozenset({TENANTS_READ}))
            identity.add_member(member.user_id, member.account.id, restored)
            assert await call() == 200
    finally:
        identity.version_delay = 0.0
    # Concurrent requests shared version reads instead of one read each.
    assert identity.calls["GetAuthzVersion"] - reads < 3 * 81


async def test_a_cached_answer_is_used_while_the_version_holds(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ})
    identity = setup.peers.identity
    assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    resolves, reads = identity.calls["Resolve"], identity.calls["GetAuthzVersion"]
    for _ in range(3):
        assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    assert identity.calls["Resolve"] == resolves
    assert identity.calls["GetAuthzVersion"] == reads + 3
    identity.add_member(member.user_id, member.account.id, Grant(frozenset({TENANTS_WRITE})))
    response = await setup.client.get("/v1/tenants", headers=member.headers())
    assert_problem(response, 403, "permission-denied")
    assert identity.calls["Resolve"] == resolves + 1


async def test_when_the_version_cannot_be_read_the_call_is_denied(setup: Setup) -> None:
    member = new_member(setup, {TENANTS_READ})
    assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    calls = setup.peers.tenancy.calls["ListTenants"]
    setup.peers.identity.failing.add("GetAuthzVersion")
    try:
        response = await setup.client.get("/v1/tenants", headers=member.headers())
    finally:
        setup.peers.identity.failing.clear()
    assert_problem(response, 500, "internal")
    assert setup.peers.tenancy.calls["ListTenants"] == calls


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
async def test_an_api_key_acts_with_its_subset_of_its_owners_permissions(
    setup: Setup, header: str
) -> None:
    owner = new_member(setup, {TENANTS_READ, TENANTS_WRITE, "audit.events:read"})
    key = setup.peers.identity.add_api_key(
        owner.user_id, owner.account.id, {TENANTS_READ, "tenancy.accounts:manage"}
    )
    headers = (
        {"Authorization": f"Bearer {key}"} if header == "authorization" else {"X-API-Key": key}
    )
    response = await setup.client.get("/v1/tenants", headers=headers)
    assert response.status_code == 200, response.text
    ctx = setup.peers.tenancy.contexts[-1]
    assert ctx.principal_id == owner.user_id
    assert ctx.principal_kind == "service_account"
    assert str(ctx.account_id) == owner.account.id
    assert ctx.permissions == {TENANTS_READ}  # not the owner's write, not more than the owner
    denied = await setup.client.post("/v1/tenants", json={"name": "x"}, headers=headers)
    assert_problem(denied, 403, "permission-denied")


async def test_a_revoked_api_key_stops_at_once(setup: Setup) -> None:
    owner = new_member(setup, {TENANTS_READ})
    key = setup.peers.identity.add_api_key(owner.user_id, owner.account.id)
    headers = {"X-API-Key": key}
    for _ in range(3):
        assert (await setup.client.get("/v1/tenants", headers=headers)).status_code == 200
    assert setup.peers.identity.calls["AuthenticateApiKey"] >= 1
    setup.peers.identity.revoke_api_key(key)
    assert_problem(await setup.client.get("/v1/tenants", headers=headers), 401)
    unknown = {"X-API-Key": "cpy_" + "0" * 32}
    assert_problem(await setup.client.get("/v1/tenants", headers=unknown), 401)


async def test_api_key_edge_cases_are_refused(setup: Setup) -> None:
    owner = new_member(setup, {TENANTS_READ})
    key = setup.peers.identity.add_api_key(owner.user_id, owner.account.id)
    both = {"X-API-Key": key, "Authorization": f"Bearer {owner.token}"}
    assert_problem(await setup.client.get("/v1/tenants", headers=both), 401)
    stranger = new_member(setup)
    elsewhere = {"X-API-Key": key, "X-Account": stranger.account.slug}
    assert_problem(
        await setup.client.get("/v1/tenants", headers=elsewhere), 403, "account-mismatch"
    )
    about_me = await setup.client.get("/v1/me", headers={"X-API-Key": key})
    assert_problem(about_me, 403, "api-key-not-allowed")


async def test_calls_about_the_caller_carry_only_who_and_the_tokens_account(setup: Setup) -> None:
    member = new_member(setup, set())
    identity = setup.peers.identity
    response = await setup.client.get("/v1/me", headers=bare(member))
    assert response.status_code == 200, response.text
    ctx = identity.me_contexts[-1]
    assert (ctx.principal_id, ctx.account_id, ctx.permissions) == (member.user_id, None, set())
    assert ctx.tenant_ids == frozenset()
    bound = setup.key.token(member.user_id, account=member.account.id)
    response = await setup.client.get("/v1/me", headers={"Authorization": f"Bearer {bound}"})
    assert response.status_code == 200
    assert str(identity.me_contexts[-1].account_id) == member.account.id
    assert_problem(await setup.client.get("/v1/me"), 401)


async def test_a_grant_on_one_tenant_never_lends_its_permissions_to_another(setup: Setup) -> None:
    reading, writing = str(uuid.uuid4()), str(uuid.uuid4())
    member = new_member(setup, set(), tenant_ids={reading, writing})
    setup.peers.identity.add_member(
        member.user_id,
        member.account.id,
        Grant(
            frozenset(),
            frozenset({reading, writing}),
            per_tenant={reading: frozenset({TENANTS_READ}), writing: frozenset({TENANTS_WRITE})},
        ),
    )
    assert (await setup.client.get("/v1/tenants", headers=member.headers())).status_code == 200
    ctx = setup.peers.tenancy.contexts[-1]
    assert (ctx.permissions, ctx.tenant_ids) == ({TENANTS_READ}, {uuid.UUID(reading)})
    created = await setup.client.post("/v1/tenants", json={"name": "x"}, headers=member.headers())
    assert created.status_code == 200, created.text
    ctx = setup.peers.tenancy.contexts[-1]
    assert (ctx.permissions, ctx.tenant_ids) == ({TENANTS_WRITE}, {uuid.UUID(writing)})
    narrowed = member.headers(**{"X-Tenant": reading})
    response = await setup.client.post("/v1/tenants", json={"name": "x"}, headers=narrowed)
    assert_problem(response, 403, "permission-denied")


@asynccontextmanager
async def gateway(peers: Peers, context_key: str, **settings: Any) -> AsyncIterator[Any]:
    config = GatewayConfig(
        context_key=context_key,
        identity_address=peers.addresses["identity"],
        tenancy_address=peers.addresses["tenancy"],
        audit_address=peers.addresses["audit"],
        **settings,
    )
    app = create_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client,
    ):
        yield client


@pytest.fixture(scope="module")
async def limited() -> AsyncIterator[tuple[Peers, httpx.AsyncClient, Any]]:
    from gateway.tests.doubles import SigningKey
    from services.runtime.context import ContextTokens

    context_key = generate_context_key()
    key = SigningKey(kid="limits")
    async with serving_peers(ContextTokens(context_key), key) as peers:
        async with gateway(
            peers,
            context_key,
            rate_limit_account_per_second=1,
            rate_limit_account_burst=3,
            rate_limit_api_key_per_second=0.5,
            rate_limit_api_key_burst=1,
            cors_allowed_origins="https://app.example.com",
        ) as client:
            yield peers, client, key


def limited_member(peers: Peers, key: Any) -> tuple[str, dict[str, str]]:
    user = str(uuid.uuid4())
    account = peers.tenancy.add_account(f"acct-{uuid.uuid4().hex[:12]}")
    peers.identity.add_member(user, account.id, Grant(frozenset({TENANTS_READ})))
    return account.id, {"Authorization": f"Bearer {key.token(user)}"}


async def test_an_account_over_its_rate_gets_429_with_retry_after(limited: Any) -> None:
    peers, client, key = limited
    _, headers = limited_member(peers, key)
    statuses = [(await client.get("/v1/tenants", headers=headers)) for _ in range(4)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    body = assert_problem(statuses[3], 429, "rate-limited")
    assert body["grpc_status"] == "RESOURCE_EXHAUSTED"
    assert int(statuses[3].headers["retry-after"]) >= 1
    _, others = limited_member(peers, key)  # another account has its own bucket
    assert (await client.get("/v1/tenants", headers=others)).status_code == 200


async def test_an_api_key_has_its_own_rate(limited: Any) -> None:
    peers, client, key = limited
    account_id, _ = limited_member(peers, key)
    owner = next(u for u, accounts in peers.identity.members.items() if account_id in accounts)
    api_key = peers.identity.add_api_key(owner, account_id)
    assert (await client.get("/v1/tenants", headers={"X-API-Key": api_key})).status_code == 200
    second = await client.get("/v1/tenants", headers={"X-API-Key": api_key})
    assert "API key" in assert_problem(second, 429)["detail"]


async def test_cors_allows_only_the_configured_origins(limited: Any, setup: Setup) -> None:
    _, client, _ = limited
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,x-account",
    }
    allowed = await client.options("/v1/tenants", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    evil = await client.options("/v1/tenants", headers={**preflight, "Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in evil.headers
    default = await setup.client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in default.headers


async def test_the_docs_page_is_served_with_a_strict_policy(setup: Setup) -> None:
    page = await setup.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert "/v1/tenants" in page.text and "http://" not in page.text.split("<script")[0]
