"""Configuration of the canonical service (environment variables CANOPY_*)."""

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class CanonicalConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["canonical"]
    # Rows per batch of a load mapped in this process (and per tenant lookup of new codes).
    load_batch_size: int = 1000
    # How long a load job may go without a heartbeat (sent every third of it) before
    # JetStream hands it to another worker: also how soon a crashed worker's job resumes.
    load_ack_wait_seconds: float = 30
    # Attempts of a load job (and deliveries of a file.received event) before giving up.
    load_max_deliver: int = 8
    # Backoff between attempts: this, doubled per attempt, at most load_retry_max_seconds.
    load_retry_seconds: float = 1.0
    load_retry_max_seconds: float = 60.0
    # The job's progress (rows read) is written every this many rows.
    load_progress_rows: int = 10_000
    # Worker processes mapping a large file (1: map every file in the service process).
    load_workers: int = 2
    # Files from this size on are mapped by the workers, in blocks of load_block_bytes.
    load_parallel_min_bytes: int = 8 << 20
    load_block_bytes: int = 1 << 20
