"""Prometheus metrics every service exposes: RPCs, events relayed and handled."""

from prometheus_client import Counter, Histogram, start_http_server

RPCS = Counter("canopy_grpc_requests_total", "gRPC calls served", ["method", "code"])
RPC_SECONDS = Histogram("canopy_grpc_request_seconds", "gRPC call duration", ["method"])
EVENTS_PUBLISHED = Counter("canopy_outbox_events_published_total", "Outbox events relayed")
EVENTS_HANDLED = Counter(
    "canopy_events_handled_total", "Events handled by consumers", ["consumer", "outcome"]
)


def expose_metrics(host: str, port: int) -> None:
    """Serve /metrics on host:port in a background thread; port 0 turns it off."""
    if port:
        start_http_server(port, addr=host)
