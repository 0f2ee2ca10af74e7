"""The gateway's settings (env prefix CANOPY_, e.g. CANOPY_HTTP_PORT)."""

from services.runtime.config import RuntimeConfig


class GatewayConfig(RuntimeConfig):
    """RuntimeConfig (peer addresses, context key, log level) plus the HTTP edge's own settings."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (comma-separated).
    forwarded_allow_ips: str = "127.0.0.1"
    # Identity's public keys: how long they are trusted, and the least time between two
    # refetches triggered by a token with an unknown key id.
    jwks_ttl_seconds: float = 300.0
    jwks_refetch_floor_seconds: float = 1.0
    # Short on purpose: a suspended account or a revoked grant takes effect within this time.
    account_cache_ttl_seconds: float = 2.0
    resolution_cache_ttl_seconds: float = 2.0
    # Deadline of every call the gateway makes to a service.
    upstream_timeout_seconds: float = 30.0
    max_body_bytes: int = 1024 * 1024
