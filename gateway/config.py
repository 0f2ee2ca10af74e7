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
    # Short on purpose: a suspended account takes effect within this time.
    account_cache_ttl_seconds: float = 2.0
    # Permissions and API keys are re-checked against identity's authz_version on every request,
    # so a revoke takes effect at once; these only bound how long an idle entry is kept.
    resolution_cache_ttl_seconds: float = 300.0
    # Hold a lease from identity (fences over NATS, CANOPY_NATS_URL) so the authz_version is
    # known without a read per request; off: one GetAuthzVersion read per request.
    authz_leases: bool = True
    api_key_cache_ttl_seconds: float = 30.0
    # Requests name their account by subdomain: `<slug>.<base domain>` (empty: off).
    base_domain: str = "canopy.localhost"
    # Subdomains of the base domain that are not accounts (comma-separated).
    reserved_subdomains: str = "api,www,docs,status"
    # Token buckets per gateway process: sustained requests per second and burst (0: no limit).
    rate_limit_account_per_second: float = 200.0
    rate_limit_account_burst: float = 400.0
    rate_limit_api_key_per_second: float = 50.0
    rate_limit_api_key_burst: float = 100.0
    # Browser origins allowed to call the API (comma-separated; empty: none, no CORS headers).
    cors_allowed_origins: str = ""
    # Deadline of every call the gateway makes to a service.
    upstream_timeout_seconds: float = 30.0
    max_body_bytes: int = 1024 * 1024

    @property
    def reserved_subdomain_set(self) -> frozenset[str]:
        names = self.reserved_subdomains.split(",")
        return frozenset(name.strip().lower() for name in names if name.strip())

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allowed_origins.split(",") if o.strip()]
