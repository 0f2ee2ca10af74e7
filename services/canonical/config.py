"""Configuration of the canonical service (environment variables CANOPY_*)."""

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class CanonicalConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["canonical"]
    # Rows per upsert statement (and per tenant lookup of codes not seen yet).
    load_batch_size: int = 1000
    # How long a load may go without a heartbeat before JetStream redelivers its event.
    load_ack_wait_seconds: float = 300
    # Deliveries of a file.received event before it is given up (and logged).
    load_max_deliver: int = 8
