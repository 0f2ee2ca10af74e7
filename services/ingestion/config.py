"""Settings of the ingestion service (environment variables prefixed CANOPY_)."""

from pathlib import Path

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class IngestionConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["ingestion"]
    # The SFTP server customers upload to (CANOPY_SFTP_HOST, CANOPY_SFTP_PORT).
    sftp_host: str = "127.0.0.1"
    sftp_port: int = 2222
    # Let several processes listen on the same SFTP port (SO_REUSEPORT; Linux spreads
    # connections across them) (CANOPY_SFTP_REUSE_PORT).
    sftp_reuse_port: bool = False
    # A signed-in connection with no SFTP request for this long is closed; its open uploads
    # are partial and discarded (CANOPY_SFTP_IDLE_TIMEOUT_SECONDS).
    sftp_idle_timeout_seconds: float = 600
    # Uploaded files: `<storage_dir>/<account_id>/<dropzone_id>/.files/<file_id>`, receipts
    # and rejects in `.../.documents/`, unfinished uploads in `<storage_dir>/.partial/`
    # (CANOPY_STORAGE_DIR).
    storage_dir: Path = Path("var/ingestion/store")
    # The SSH host key, generated on first start and reused (CANOPY_HOST_KEY_PATH).
    host_key_path: Path = Path("var/ingestion/ssh_host_ed25519_key")
    # ReadFileContent streams a file in chunks of this size (CANOPY_CONTENT_CHUNK_BYTES).
    content_chunk_bytes: int = 1024 * 1024
    # No upload grows beyond this, whatever the tier (CANOPY_MAX_UPLOAD_BYTES).
    max_upload_bytes: int = 64 * 1024**3
    # Largest file per account tier (CANOPY_MAX_FILE_BYTES_STANDARD, ..._PROFESSIONAL,
    # ..._ENTERPRISE); an account whose tier is not known yet counts as `default_tier`.
    max_file_bytes_standard: int = 1024**3
    max_file_bytes_professional: int = 10 * 1024**3
    max_file_bytes_enterprise: int = 50 * 1024**3
    default_tier: str = "standard"
    # Failed sign-ins: this many within the window lock the login (or source address) for
    # lockout_seconds, doubled for each lockout in a row up to lockout_max_seconds; each
    # failure in the window delays the answer by sign_in_delay_seconds more (capped).
    lockout_failures: int = 5
    lockout_window_seconds: float = 15 * 60
    lockout_seconds: float = 15 * 60
    lockout_max_seconds: float = 24 * 3600
    sign_in_delay_seconds: float = 0.5
    sign_in_max_delay_seconds: float = 5
    # A login can be hard-deleted once disabled for this long (CANOPY_LOGIN_DELETE_AFTER_DAYS).
    login_delete_after_days: float = 30
    # How long a deletion dry run's confirmation token stays valid.
    delete_confirmation_seconds: int = 600
    # How often zones are checked against their expected-arrival schedule.
    lateness_check_seconds: float = 60
