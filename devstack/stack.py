"""The whole platform as separate processes: backends, migrations, five services and the gateway.

Used by `make run` and by the end-to-end tests. PostgreSQL and NATS are embedded (from their
PyPI wheels) unless URLs are given.
"""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.nats import EmbeddedNats
from devstack.ports import free_port
from devstack.postgres import EmbeddedPostgres
from devstack.processes import LineSink, ProcessGroup, print_line, wait_for_port
from services.runtime.config import DEFAULT_PORTS
from services.runtime.context import generate_context_key
from services.runtime.keywrap import generate_kek

REPO = Path(__file__).resolve().parent.parent
SERVICES = ("tenancy", "identity", "ingestion", "canonical", "audit")


@dataclass(frozen=True)
class StackPorts:
    http: int
    sftp: int
    grpc: dict[str, int] = field(default_factory=dict)
    # Prometheus /metrics of each service (none unless given: the tests ask for them).
    metrics: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> "StackPorts":
        """Defaults 8080, 2222 and 50051-50055, each overridable (CANOPY_HTTP_PORT, ...)."""
        return cls(
            http=int(environ.get("CANOPY_HTTP_PORT", 8080)),
            sftp=int(environ.get("CANOPY_SFTP_PORT", 2222)),
            grpc={
                name: int(environ.get(f"CANOPY_{name.upper()}_PORT", port))
                for name, port in DEFAULT_PORTS.items()
            },
        )

    @classmethod
    def free(cls) -> "StackPorts":
        return cls(
            http=free_port(),
            sftp=free_port(),
            grpc={name: free_port() for name in DEFAULT_PORTS},
            metrics={name: free_port() for name in DEFAULT_PORTS},
        )


class Stack:
    def __init__(
        self,
        *,
        var_dir: Path,
        ports: StackPorts,
        durable: bool = True,
        database_url: str | None = None,
        nats_url: str | None = None,
        sink: LineSink = print_line,
    ) -> None:
        self.var_dir = var_dir
        self.ports = ports
        self.durable = durable
        self._database_url = database_url
        self._nats_url = nats_url
        self.processes = ProcessGroup(sink=sink, log_dir=var_dir / "logs")
        self._postgres: EmbeddedPostgres | None = None
        self._nats: EmbeddedNats | None = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def database_url(self) -> str:
        return self._database_url or self._postgres.admin_url  # type: ignore[union-attr]

    @property
    def nats_url(self) -> str:
        return self._nats_url or self._nats.url  # type: ignore[union-attr]

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._start_backends()
        self.migrate()
        for name in SERVICES:
            self.start_service(name)
        for name in SERVICES:
            wait_until_serving(f"127.0.0.1:{self.ports.grpc[name]}")
        self.processes.start("gateway", [sys.executable, "-m", "gateway"], self.env(), cwd=REPO)
        wait_until_healthy(f"{self.gateway_url}/healthz")

    def stop(self) -> None:
        self.processes.stop_all()
        if self._nats:
            self._nats.stop()
        if self._postgres:
            self._postgres.stop()

    def start_service(self, name: str) -> None:
        env = {**self.env(), "CANOPY_GRPC_PORT": str(self.ports.grpc[name])}
        if name in self.ports.metrics:
            env["CANOPY_METRICS_PORT"] = str(self.ports.metrics[name])
        self.processes.start(
            name, [sys.executable, "-m", f"services.{name}", "serve"], env, cwd=REPO
        )

    def restart_service(self, name: str) -> None:
        self.processes.restart(name)
        wait_until_serving(f"127.0.0.1:{self.ports.grpc[name]}")

    def migrate(self) -> None:
        for name in SERVICES:
            subprocess.run(
                [sys.executable, "-m", f"services.{name}", "migrate"],
                env={**os.environ, **self.env()},
                cwd=REPO,
                check=True,
            )

    def env(self) -> dict[str, str]:
        """What every process of the platform is configured with."""
        keys = self._keys()
        env = {
            "CANOPY_DATABASE_URL": self.database_url,
            "CANOPY_NATS_URL": self.nats_url,
            "CANOPY_CONTEXT_KEY": keys["CANOPY_CONTEXT_KEY"],
            "CANOPY_KEY_ENCRYPTION_KEY": keys["CANOPY_KEY_ENCRYPTION_KEY"],
            "CANOPY_HTTP_PORT": str(self.ports.http),
            "CANOPY_SFTP_PORT": str(self.ports.sftp),
            "CANOPY_STORAGE_DIR": str(self.var_dir / "ingestion" / "store"),
            "CANOPY_HOST_KEY_PATH": str(self.var_dir / "ingestion" / "ssh_host_ed25519_key"),
        }
        for name, port in self.ports.grpc.items():
            env[f"CANOPY_{name.upper()}_ADDRESS"] = f"127.0.0.1:{port}"
        return env

    def _start_backends(self) -> None:
        if not self._database_url:
            self._postgres = EmbeddedPostgres(
                data_dir=self.var_dir / "postgres", durable=self.durable
            )
            self._postgres.start()
        if not self._nats_url:
            self._nats = EmbeddedNats(store_dir=self.var_dir / "nats")
            self._nats.start()

    def _keys(self) -> dict[str, str]:
        """The platform's keys, made once and kept with the data (losing them loses the data)."""
        return kept_secrets(
            self.var_dir / "keys.env",
            {"CANOPY_CONTEXT_KEY": generate_context_key, "CANOPY_KEY_ENCRYPTION_KEY": generate_kek},
        )


def kept_secrets(path: Path, makers: dict[str, Callable[[], str]]) -> dict[str, str]:
    """Secrets made on first use and kept in `path` (mode 0600), so a restart finds them again."""
    kept: dict[str, str] = {}
    if path.exists():
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        kept = {name: value for name, value in pairs}
    missing = {name: make() for name, make in makers.items() if name not in kept}
    if missing:
        kept.update(missing)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text("".join(f"{name}={value}\n" for name, value in kept.items()))
    return kept


def wait_until_serving(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    host, port = address.rsplit(":", 1)
    wait_for_port(host, int(port), timeout)
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address} is not serving after {timeout:.0f}s")
            time.sleep(0.2)


def wait_until_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} is not healthy after {timeout:.0f}s")
        time.sleep(0.2)
