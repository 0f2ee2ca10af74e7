"""Settings of the tenancy service (environment variables prefixed CANOPY_)."""

from pydantic import Field

from services.runtime.config import DEFAULT_PORTS, ServedConfig
from services.tenancy.domain.groups import DEFAULT_MAX_DEPTH, HIGHEST_MAX_DEPTH


class TenancyConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["tenancy"]
    # Connections the service keeps to PostgreSQL (and as many again under load).
    database_pool_size: int = 10
    # Levels the tenant tree of an account may have (CANOPY_TENANT_GROUP_MAX_DEPTH).
    tenant_group_max_depth: int = Field(DEFAULT_MAX_DEPTH, ge=1, le=HIGHEST_MAX_DEPTH)
