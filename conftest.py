"""Joint fixtures: one embedded PostgreSQL and NATS for the whole test session.

Set DATABASE_URL (a role that may create roles) and NATS_URL to use running servers instead.
Tests share the backends safely by using unique ids and slugs.
"""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres
from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens, generate_context_key
from services.runtime.keywrap import generate_kek


@pytest.fixture(scope="session")
def backend_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="canopy-test-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def database_url(backend_dir: Path) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with EmbeddedPostgres(data_dir=backend_dir / "postgres", durable=False) as server:
        yield server.admin_url


@pytest.fixture(scope="session")
def nats_url(backend_dir: Path) -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    with EmbeddedNats(store_dir=backend_dir / "nats") as server:
        yield server.url


@pytest.fixture(scope="session")
def runtime_config(database_url: str, nats_url: str) -> RuntimeConfig:
    """Settings every service under test shares; a service test derives its own config from it."""
    return RuntimeConfig(
        database_url=database_url,
        nats_url=nats_url,
        context_key=generate_context_key(),
        key_encryption_key=generate_kek(),
    )


@pytest.fixture(scope="session")
def tokens(runtime_config: RuntimeConfig) -> ContextTokens:
    return ContextTokens(runtime_config.context_key)
