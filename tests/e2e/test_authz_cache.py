"""The gateway's permission cache on the running platform: it answers from memory under an authz
lease, and a revoke that has returned is never answered "allow" afterwards, under load."""

import asyncio
import time
import uuid

import httpx
import psycopg

from devstack.stack import Stack
from tests.e2e.conftest import AccountAdmin, new_account, ok


async def signed_in(stack: Stack, admin: AccountAdmin) -> tuple[str, httpx.AsyncClient]:
    email = f"clerk-{uuid.uuid4().hex[:8]}@elsewhere-{uuid.uuid4().hex[:6]}.example"
    password = "correct-horse-12"
    user = await admin.post("/v1/users", {"email": email, "password": password})
    http = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30)
    token = ok(await http.post("/v1/auth/token", json={"email": email, "password": password}))
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    http.headers["X-Account"] = admin.slug
    return user["id"], http


async def test_the_gateway_holds_an_authz_lease(stack: Stack, e2e_database_url: str) -> None:
    with psycopg.connect(e2e_database_url) as conn:
        live = conn.execute(
            "SELECT count(*) FROM identity.authz_leases WHERE expires_at > clock_timestamp()"
        ).fetchone()
    assert live is not None and live[0] >= 1


def identity_calls(stack: Stack, *methods: str) -> int:
    """How many of these identity RPCs identity has served (its Prometheus counters)."""
    page = httpx.get(f"http://127.0.0.1:{stack.ports.metrics['identity']}/metrics").text
    total = 0.0
    for line in page.splitlines():
        if line.startswith("canopy_grpc_requests_total{") and any(
            f'/{method}"' in line for method in methods
        ):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def test_repeated_requests_ask_identity_nothing(stack: Stack) -> None:
    admin = await new_account(stack, "cached")
    user_id, clerk = await signed_in(stack, admin)
    try:
        await admin.post("/v1/role-grants", {"user_id": user_id, "role": "staff"})
        assert (await clerk.get("/v1/tenants")).status_code == 200
        lookups = ("GetAuthzVersion", "Resolve")
        before = identity_calls(stack, *lookups)
        for _ in range(40):
            assert (await clerk.get("/v1/tenants")).status_code == 200
        assert identity_calls(stack, *lookups) - before <= 2
    finally:
        await clerk.aclose()
        await admin.http.aclose()


async def test_a_returned_revoke_is_never_answered_allow_afterwards(stack: Stack) -> None:
    admin = await new_account(stack, "revoke")
    user_id, clerk = await signed_in(stack, admin)
    answers: list[tuple[float, int]] = []  # (sent at, status)
    stop = asyncio.Event()

    async def keep_asking() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            answers.append((sent, (await clerk.get("/v1/tenants")).status_code))

    try:
        for _ in range(3):
            grant = await admin.post("/v1/role-grants", {"user_id": user_id, "role": "staff"})
            assert (await clerk.get("/v1/tenants")).status_code == 200
            answers.clear()
            stop.clear()
            askers = [asyncio.ensure_future(keep_asking()) for _ in range(8)]
            await asyncio.sleep(0.3)
            ok(await admin.http.delete(f"/v1/role-grants/{grant['id']}"))
            revoked = time.monotonic()
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*askers)
            before = {status for sent, status in answers if sent < revoked}
            after = [status for sent, status in answers if sent >= revoked]
            assert 200 in before  # the load ran while the grant held
            assert after and set(after) == {403}, after
    finally:
        await clerk.aclose()
        await admin.http.aclose()
