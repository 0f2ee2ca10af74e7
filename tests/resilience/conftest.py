"""A platform of its own for tests that kill its processes and stop its NATS.

Like tests/e2e's `stack`, but with its own database (`canopy_resilience`) and its own NATS
server, which the tests stop and start again, so nothing they break reaches other tests.
Load jobs are configured to notice a dead worker within seconds.
"""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from devstack.nats import EmbeddedNats
from devstack.stack import Stack, StackPorts

# A killed worker's job goes to another after the ack wait; retries back off up to 4 s.
JOB_SETTINGS = {
    "CANOPY_LOAD_ACK_WAIT_SECONDS": "4",
    "CANOPY_LOAD_RETRY_SECONDS": "0.5",
    "CANOPY_LOAD_RETRY_MAX_SECONDS": "4",
    "CANOPY_LOAD_MAX_DELIVER": "30",
    "CANOPY_LOAD_PROGRESS_ROWS": "2000",
    # The 50,000-row files are mapped by load worker processes, which die with the service.
    "CANOPY_LOAD_PARALLEL_MIN_BYTES": str(1 << 20),
}


class ResilienceStack(Stack):
    def __init__(self, *, nats: EmbeddedNats, **kwargs: object) -> None:
        super().__init__(nats_url=nats.url, **kwargs)  # type: ignore[arg-type]
        self.nats = nats

    def env(self) -> dict[str, str]:
        return {**super().env(), **JOB_SETTINGS}


@pytest.fixture(scope="session")
def resilience_database_url(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS canopy_resilience WITH (FORCE)")
        conn.execute("CREATE DATABASE canopy_resilience")
    return urlunsplit(urlsplit(database_url)._replace(path="/canopy_resilience"))


@pytest.fixture(scope="session")
def resilience_nats(backend_dir: Path) -> Iterator[EmbeddedNats]:
    with EmbeddedNats(store_dir=backend_dir / "resilience-nats") as server:
        yield server


@pytest.fixture(scope="session")
def stack(
    backend_dir: Path, resilience_database_url: str, resilience_nats: EmbeddedNats
) -> Iterator[ResilienceStack]:
    lines: list[str] = []
    platform = ResilienceStack(
        nats=resilience_nats,
        var_dir=backend_dir / "resilience-stack",
        ports=StackPorts.free(),
        durable=False,
        database_url=resilience_database_url,
        sink=lambda name, line: lines.append(f"{name}: {line}"),
    )
    try:
        with platform:
            yield platform
    except Exception:
        print("\n".join(lines[-300:]))
        raise
    finally:
        if platform.processes.poll():
            print("\n".join(lines[-300:]))
