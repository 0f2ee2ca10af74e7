"""Identity's settings: gRPC port, token lifetimes and argon2id cost (env prefix CANOPY_)."""

from pydantic import Field

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class IdentityConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["identity"]
    # Lifetime of the access tokens IssueToken signs (CANOPY_TOKEN_LIFETIME_SECONDS).
    token_lifetime_seconds: int = Field(default=3600, ge=60, le=86_400)
    # Lifetime of refresh tokens (CANOPY_REFRESH_TOKEN_LIFETIME_SECONDS); each is single use.
    refresh_token_lifetime_seconds: int = Field(default=30 * 86_400, ge=300, le=365 * 86_400)
    # argon2id cost (RFC 9106 "low memory" defaults); CANOPY_ARGON2_TIME_COST, ...
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    # Leases on caching authz versions (the gateway's): how long one lasts unrenewed, and how
    # long an authorization change waits for a holder to acknowledge its fence before breaking
    # the holder's lease (and then waiting for it to run out).
    authz_lease_seconds: float = Field(default=3.0, ge=1.0, le=60.0)
    authz_fence_ack_seconds: float = Field(default=0.5, gt=0.0, le=10.0)
