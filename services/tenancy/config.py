"""Settings of the tenancy service (environment variables prefixed CANOPY_)."""

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class TenancyConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["tenancy"]
    # Connections the service keeps to PostgreSQL (and as many again under load).
    database_pool_size: int = 10
