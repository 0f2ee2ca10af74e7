"""The running platform, shared by every end-to-end test, plus clients that act as its users."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncssh
import httpx
import psycopg
import pytest

from devstack.nats import EmbeddedNats
from devstack.stack import REPO, Stack, StackPorts

FINAL_STATUSES = {
    "FILE_STATUS_LOADED",
    "FILE_STATUS_PARTIALLY_LOADED",
    "FILE_STATUS_FAILED",
    "FILE_STATUS_DUPLICATE",
    "FILE_STATUS_QUARANTINED",
}


@pytest.fixture(scope="session")
def e2e_database_url(database_url: str) -> str:
    """A database of its own, so the platform never meets the service tests' rows and keys."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS canopy_e2e WITH (FORCE)")
        conn.execute("CREATE DATABASE canopy_e2e")
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/canopy_e2e"))


@pytest.fixture(scope="session")
def e2e_nats_url(backend_dir: Path) -> Iterator[str]:
    """A NATS server of its own, so no event of the service tests reaches the platform."""
    with EmbeddedNats(store_dir=backend_dir / "e2e-nats") as server:
        yield server.url


@pytest.fixture(scope="session")
def stack(backend_dir: Path, e2e_database_url: str, e2e_nats_url: str) -> Iterator[Stack]:
    lines: list[str] = []
    platform = Stack(
        var_dir=backend_dir / "stack",
        ports=StackPorts.free(),
        durable=False,
        database_url=e2e_database_url,
        nats_url=e2e_nats_url,
        sink=lambda name, line: lines.append(f"{name}: {line}"),
    )
    try:
        with platform:
            yield platform
    except Exception:
        print("\n".join(lines[-200:]))
        raise
    finally:
        crashed = platform.processes.poll()
        if crashed:
            print("\n".join(lines[-200:]))


def canopy(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator CLI against the running stack."""
    return subprocess.run(
        [sys.executable, "-m", "canopyctl", *args],
        env={**os.environ, **stack.env()},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class AccountAdmin:
    """An account created by the operator CLI, and an HTTP client signed in as its admin."""

    slug: str
    account_id: str
    email: str
    password: str
    http: httpx.AsyncClient

    async def get(self, path: str, **params: object) -> dict:
        return ok(await self.http.get(path, params=params))

    async def post(self, path: str, body: dict) -> dict:
        return ok(await self.http.post(path, json=body))


def ok(response: httpx.Response) -> dict:
    assert response.status_code < 400, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json()


async def new_account(stack: Stack, prefix: str = "acme") -> AccountAdmin:
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    email, password = f"admin@{slug}.example", "correct-horse-battery"
    created = canopy(
        stack,
        "accounts",
        "create",
        "--name",
        slug.title(),
        "--slug",
        slug,
        "--admin-email",
        email,
        "--admin-password",
        password,
    )
    assert created.returncode == 0, created.stderr
    http = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30)
    token = ok(await http.post("/v1/auth/token", json={"email": email, "password": password}))
    assert token["token_type"].lower() == "bearer"
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    return AccountAdmin(slug, created.stdout.strip().splitlines()[-1], email, password, http)


async def sftp_upload(stack: Stack, username: str, password: str, name: str, data: bytes) -> None:
    async with asyncssh.connect(
        "127.0.0.1",
        stack.ports.sftp,
        username=username,
        password=password,
        known_hosts=None,
        client_keys=None,
    ) as connection:
        async with connection.start_sftp_client() as sftp:
            async with sftp.open(f"incoming/{name}", "wb") as remote:
                await remote.write(data)


async def wait_for_file(
    admin: AccountAdmin, name: str, *, count: int = 1, seconds: float = 60
) -> list[dict]:
    """The files called `name`, newest first, once `count` of them reached a final status."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        files = [
            f for f in (await admin.get("/v1/files", page_size=500))["files"] if f["name"] == name
        ]
        if len(files) >= count and all(f["status"] in FINAL_STATUSES for f in files):
            return files
        assert asyncio.get_running_loop().time() < deadline, f"{name} not final: {files}"
        await asyncio.sleep(0.3)
