"""The audit service's settings (environment variables prefixed CANOPY_)."""

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class AuditConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["audit"]
    # Events read per query while verifying a chain (a chain is never held in memory whole).
    audit_verify_batch_size: int = 500
    # Deliveries of one event before its consumer gives up on it; the audit trail retries long
    # rather than lose an event to a passing database outage.
    audit_max_deliver: int = 100
