"""Typed configuration, read once from the environment at each process's entrypoint."""

from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "identity": 50051,
    "tenancy": 50052,
    "ingestion": 50053,
    "canonical": 50054,
    "audit": 50055,
}


class RuntimeConfig(BaseSettings):
    """What every service process needs; a service's own config subclasses it."""

    model_config = SettingsConfigDict(env_prefix="CANOPY_", extra="ignore", populate_by_name=True)

    # A URL with rights to create roles (migrations) or any URL whose user we swap for the
    # service's own roles: `<schema>_app` to serve, `<schema>_owner` to migrate.
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/canopy",
        validation_alias=AliasChoices("CANOPY_DATABASE_URL", "DATABASE_URL", "database_url"),
    )
    app_database_url: str | None = None
    owner_database_url: str | None = None
    database_role_password: str | None = None
    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        validation_alias=AliasChoices("CANOPY_NATS_URL", "NATS_URL", "nats_url"),
    )
    # JetStream replicas of each context's stream (3 on a NATS cluster).
    nats_stream_replicas: int = 1
    # Ed25519 private key (32-byte seed, base64) signing and verifying context tokens.
    context_key: str = ""
    # AES-256 key-encryption key (32 bytes, base64) wrapping data keys and signing keys at rest.
    key_encryption_key: str = ""
    grpc_host: str = "127.0.0.1"
    # Prometheus /metrics port of this process (0: off).
    metrics_port: int = 0
    log_level: str = "INFO"
    identity_address: str = f"127.0.0.1:{DEFAULT_PORTS['identity']}"
    tenancy_address: str = f"127.0.0.1:{DEFAULT_PORTS['tenancy']}"
    ingestion_address: str = f"127.0.0.1:{DEFAULT_PORTS['ingestion']}"
    canonical_address: str = f"127.0.0.1:{DEFAULT_PORTS['canonical']}"
    audit_address: str = f"127.0.0.1:{DEFAULT_PORTS['audit']}"

    def role_url(self, role: str) -> str:
        """The database URL for `role`, keeping host, port, database and options."""
        return sqlalchemy_url(with_user(self.database_url, role, self.database_role_password))

    def app_url(self, schema: str) -> str:
        return sqlalchemy_url(self.app_database_url or self.role_url(f"{schema}_app"))

    def owner_url(self, schema: str) -> str:
        return sqlalchemy_url(self.owner_database_url or self.role_url(f"{schema}_owner"))


class ServedConfig(RuntimeConfig):
    """A service's config: the runtime's plus the port it serves gRPC on."""

    grpc_port: int


def with_user(url: str, user: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = user if password is None else f"{user}:{password}"
    netloc += f"@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy wants the psycopg 3 driver named in the scheme."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


def libpq_url(url: str) -> str:
    """psql and psycopg.connect want the plain scheme."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
