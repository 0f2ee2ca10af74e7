"""python -m bench.gateway: an authenticated, tenant-scoped list through the gateway against the
raw limit of the same work, in one run on this machine.

Gateway path: HTTP -> gateway (JWT verify, authz_version known under its authz lease, cached
permissions, context token) -> gRPC -> tenancy -> PostgreSQL (RLS transaction) -> JSON.
Direct path: a minimal Starlette handler running the same RLS transaction (same set_config and
SELECT, as the tenancy application role) in as many processes as the gateway and tenancy
together. It runs three times: with four round trips per request (BEGIN, set_config, SELECT,
COMMIT: the ratio's base), with the runtime's three (`BEGIN; set_config` as one string, SELECT,
COMMIT: what services.runtime.db does) and with all of it in one round trip, to show what
folding further would buy the services.

Load: wrk (installed from Debian's packages when missing; a bounded httpx + asyncio generator
if that fails), N connections for a fixed duration, on loopback. Also prints the cached
permission resolve latency as the gateway has it per request (under an authz lease, so no call
to identity), and the cache lookup alone. The last line is the ratio:
`gateway ratio 0.74 rps, p99 1.3x`.
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.packages import ensure_debian_package

ROUND_TRIPS = {"four": 4, "three": 3, "one": 1}
SET_CONTEXT = (
    "SELECT set_config('app.account_id', %(account_id)s, true),"
    " set_config('app.tenant_ids', %(tenant_ids)s, true),"
    " set_config('app.all_tenants', %(all_tenants)s, true),"
    " set_config('app.principal_id', %(principal_id)s, true)"
)
SELECT_TENANTS = (
    "SELECT id, account_id, name, created_at, updated_at FROM tenancy.tenants"
    " WHERE account_id = %(account_id)s AND deleted_at IS NULL ORDER BY id LIMIT 51"
)


# --- the direct handler (imported by uvicorn workers: `bench.gateway:direct_app`) -----------


def direct_app() -> Any:
    """Starlette app: GET /tenants with X-Account -> the tenancy RLS transaction -> JSON."""
    import psycopg
    from psycopg.rows import dict_row
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    url = os.environ["BENCH_DIRECT_URL"]
    mode = os.environ.get("BENCH_DIRECT_MODE", "four")
    size = int(os.environ.get("BENCH_DIRECT_POOL", "10"))
    pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        for _ in range(size):
            pool.put_nowait(
                await psycopg.AsyncConnection.connect(
                    url, row_factory=dict_row, autocommit=mode != "four"
                )
            )
        yield

    async def tenants(request: Request) -> JSONResponse:
        account = str(uuid.UUID(request.headers["x-account"]))
        params = {
            "account_id": account,
            "tenant_ids": "{}",
            "all_tenants": "on",
            "principal_id": "bench",
        }
        conn = await pool.get()
        try:
            if mode == "one":
                # One simple-query batch: BEGIN, set_config, SELECT, COMMIT in one round trip.
                # The values are a parsed UUID and constants, so inlining them is safe here.
                batch = (
                    "BEGIN;"
                    + SET_CONTEXT % {k: f"'{v}'" for k, v in params.items()}
                    + ";"
                    + SELECT_TENANTS % {"account_id": f"'{account}'"}
                    + ";COMMIT"
                )
                cursor = conn.cursor()
                await cursor.execute(batch.encode(), prepare=False)
                cursor.nextset()
                cursor.nextset()
                rows = await cursor.fetchall()
            elif mode == "three":
                # As services.runtime.db: BEGIN with the settings, the query, COMMIT.
                begin = "BEGIN;" + SET_CONTEXT % {k: f"'{v}'" for k, v in params.items()}
                try:
                    await conn.execute(begin.encode(), prepare=False)
                    cursor = await conn.execute(SELECT_TENANTS, params)
                    rows = await cursor.fetchall()
                    await conn.execute(b"COMMIT")
                except BaseException:
                    await conn.execute(b"ROLLBACK")
                    raise
            else:
                async with conn.transaction():
                    await conn.execute(SET_CONTEXT, params)
                    cursor = await conn.execute(SELECT_TENANTS, params)
                    rows = await cursor.fetchall()
        finally:
            pool.put_nowait(conn)
        body = [
            {
                "id": str(r["id"]),
                "account_id": str(r["account_id"]),
                "name": r["name"],
                "created_at": r["created_at"].isoformat(),
                "updated_at": r["updated_at"].isoformat(),
            }
            for r in rows[:50]
        ]
        return JSONResponse({"tenants": body, "next_page_token": ""})

    return Starlette(routes=[Route("/tenants", tenants)], lifespan=lifespan)


# --- load ------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_load(url: str, headers: dict[str, str], *, connections: int, seconds: float) -> Result:
    if shutil.which("wrk"):
        return _wrk(url, headers, connections=connections, seconds=seconds)
    return asyncio.run(_python_load(url, headers, connections=connections, seconds=seconds))


def _wrk(url: str, headers: dict[str, str], *, connections: int, seconds: float) -> Result:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket = re.search(r"Socket errors:.*", out)
    if socket:
        errors += sum(int(n) for n in re.findall(r"\d+", socket.group(0)))
    return Result(rps, percentile("50"), percentile("99"), errors)


async def _python_load(
    url: str, headers: dict[str, str], *, connections: int, seconds: float
) -> Result:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return Result(
        len(ordered) / elapsed,
        ordered[len(ordered) // 2] * 1000,
        ordered[int(len(ordered) * 0.99)] * 1000,
        errors,
    )


# --- the platform pieces this needs ----------------------------------------------------------


def start_platform(var: Path, quiet: bool) -> tuple[Any, Any, list[Any]]:
    from devstack.nats import EmbeddedNats
    from devstack.postgres import EmbeddedPostgres
    from devstack.stack import REPO, Stack, StackPorts, wait_until_healthy, wait_until_serving

    closers: list[Any] = []
    postgres = EmbeddedPostgres(data_dir=var / "postgres", durable=False)
    postgres.start()
    closers.append(postgres.stop)
    nats = EmbeddedNats(store_dir=var / "nats")
    nats.start()
    closers.append(nats.stop)
    lines: list[str] = []
    stack = Stack(
        var_dir=var / "stack",
        ports=StackPorts.free(),
        durable=False,
        database_url=postgres.admin_url,
        nats_url=nats.url,
        sink=(lambda name, line: lines.append(f"{name}: {line}")) if quiet else print_line(),
    )
    stack.var_dir.mkdir(parents=True, exist_ok=True)
    closers.insert(0, stack.processes.stop_all)
    env = {**os.environ, **stack.env()}
    for name in ("tenancy", "identity"):
        subprocess.run(
            [sys.executable, "-m", f"services.{name}", "migrate"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=quiet,
        )
        stack.start_service(name)
    for name in ("tenancy", "identity"):
        wait_until_serving(f"127.0.0.1:{stack.ports.grpc[name]}")
    gateway_env = {
        **stack.env(),
        "CANOPY_RATE_LIMIT_ACCOUNT_PER_SECOND": "0",
        "CANOPY_LOG_LEVEL": "WARNING",
    }
    stack.processes.start("gateway", [sys.executable, "-m", "gateway"], gateway_env, cwd=REPO)
    wait_until_healthy(f"{stack.gateway_url}/healthz")
    return stack, postgres, closers


def print_line() -> Any:
    from devstack.processes import print_line as printer

    return printer


def create_account(stack: Any, tenants: int) -> tuple[str, str, str]:
    """A fresh account with `tenants` tenants; its slug, id and an admin token."""
    from devstack.stack import REPO

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    email, password = f"admin@{slug}.example", "correct-horse-battery"
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "canopyctl",
            "accounts",
            "create",
            "--name",
            slug,
            "--slug",
            slug,
            "--admin-email",
            email,
            "--admin-password",
            password,
        ],
        env={**os.environ, **stack.env()},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    account_id = created.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:
        token = http.post("/v1/auth/token", json={"email": email, "password": password})
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "X-Account": slug}
        for number in range(tenants):
            made = http.post("/v1/tenants", json={"name": f"Site {number}"}, headers=headers)
            made.raise_for_status()
    return slug, account_id, token.json()["access_token"]


def start_direct(stack: Any, postgres: Any, mode: str, workers: int) -> tuple[Any, str]:
    from devstack.ports import free_port
    from devstack.stack import REPO
    from services.runtime.config import RuntimeConfig

    config = RuntimeConfig(database_url=postgres.admin_url)
    url = config.app_url("tenancy").replace("postgresql+psycopg://", "postgresql://")
    port = free_port()
    env = {
        **os.environ,
        "BENCH_DIRECT_URL": url,
        "BENCH_DIRECT_MODE": mode,
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.gateway:direct_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=REPO,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/tenants", headers={"X-Account": str(uuid.uuid4())}).status_code:
                break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.2)
    return process, base


async def resolve_latency(
    stack: Any, slug: str, token: str, calls: int
) -> tuple[float, float, float]:
    """Cached permission resolve as the gateway does it per request (its own AccountResolver,
    holding an authz lease from identity as a running gateway does): p50 and p99 in ms, plus
    the in-process cache lookup alone (µs)."""
    import jwt

    from gateway.app import Gateway
    from gateway.auth import Principal
    from gateway.config import GatewayConfig
    from gateway.routes import build_routes
    from services.runtime.clients import ServiceChannels

    config = GatewayConfig(**{k.removeprefix("CANOPY_").lower(): v for k, v in stack.env().items()})
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    channels = ServiceChannels(config)
    gateway = Gateway(config=config, routes=build_routes(), channels=channels)
    assert gateway.lease is not None
    lease = asyncio.ensure_future(gateway.lease.run())
    try:
        for _ in range(200):
            if gateway.lease.held() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("the gateway took no authz lease from identity in 10 s")
        resolver = gateway.accounts
        principal = Principal(id=subject, kind="user", credential_id="bench")
        for _ in range(50):
            await resolver.membership(principal=principal, account_hint=slug, correlation_id="b")
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            await resolver.membership(principal=principal, account_hint=slug, correlation_id="b")
            timings.append((time.perf_counter() - started) * 1000)
        lookups = []
        key = (subject, next(iter(resolver._resolutions._entries))[1], "bench")  # noqa: SLF001
        for _ in range(calls):
            started = time.perf_counter()
            resolver._resolutions.get(key)  # noqa: SLF001
            lookups.append((time.perf_counter() - started) * 1e6)
    finally:
        lease.cancel()
        await asyncio.wait({lease}, timeout=5)
        await channels.close()
    timings.sort()
    return (
        statistics.median(timings),
        timings[int(len(timings) * 0.99)],
        sorted(lookups)[int(len(lookups) * 0.99)],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=20, help="rows each list returns")
    parser.add_argument("--workers", type=int, default=2, help="direct handler processes")
    parser.add_argument("--verbose", action="store_true", help="show the services' logs")
    args = parser.parse_args(argv)
    try:
        ensure_debian_package("wrk", installed=shutil.which("wrk") is not None)
    except RuntimeError as error:
        print(f"{error}; falling back to the Python load generator", flush=True)
    load = "wrk" if shutil.which("wrk") else "httpx+asyncio"
    with tempfile.TemporaryDirectory(prefix="canopy-bench-") as tmp:
        stack, postgres, closers = start_platform(Path(tmp), quiet=not args.verbose)
        try:
            slug, account_id, token = create_account(stack, args.tenants)
            resolve_p50, resolve_p99, lookup_p99 = asyncio.run(
                resolve_latency(stack, slug, token, 2000)
            )
            headers = {"Authorization": f"Bearer {token}", "X-Account": slug}
            url = f"{stack.gateway_url}/v1/tenants"
            run_load(url, headers, connections=args.connections, seconds=2)  # warm up
            gateway = run_load(url, headers, connections=args.connections, seconds=args.seconds)
            direct: dict[str, Result] = {}
            for mode in ROUND_TRIPS:
                process, base = start_direct(stack, postgres, mode, args.workers)
                try:
                    target = f"{base}/tenants"
                    run_load(
                        target, {"X-Account": account_id}, connections=args.connections, seconds=2
                    )
                    direct[mode] = run_load(
                        target,
                        {"X-Account": account_id},
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                finally:
                    process.terminate()
                    process.wait(timeout=30)
        finally:
            for close in closers:
                close()
    rows = [("gateway -> tenancy (grpc) -> PostgreSQL", gateway)] + [
        (f"direct Starlette x{args.workers}, {ROUND_TRIPS[m]} round trip(s)", r)
        for m, r in direct.items()
    ]
    print(
        f"load: {load}, {args.connections} connections, {args.seconds:.0f} s each, "
        f"{args.tenants} tenants per list, {os.cpu_count()} CPUs"
    )
    for name, result in rows:
        print(
            f"{name:48s} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
            f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}"
        )
    print(
        f"cached permission resolve (under an authz lease): p50 {resolve_p50:.3f} ms,"
        f" p99 {resolve_p99:.3f} ms; cache lookup alone p99 {lookup_p99:.1f} µs"
    )
    folded = direct["one"]
    print(
        json.dumps(
            {
                "gateway_rps": round(gateway.rps),
                "direct_4rt_rps": round(direct["four"].rps),
                "direct_3rt_rps": round(direct["three"].rps),
                "direct_1rt_rps": round(folded.rps),
                "ratio_vs_4rt": round(gateway.rps / direct["four"].rps, 2),
                "ratio_vs_3rt": round(gateway.rps / direct["three"].rps, 2),
                "ratio_vs_1rt": round(gateway.rps / folded.rps, 2),
                "resolve_p99_ms": round(resolve_p99, 3),
            }
        )
    )
    base = direct["four"]
    print(
        f"gateway ratio {gateway.rps / base.rps:.2f} rps, p99 {gateway.p99_ms / base.p99_ms:.1f}x"
    )


if __name__ == "__main__":
    main()
