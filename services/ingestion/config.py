"""Settings of the ingestion service (environment variables prefixed CANOPY_)."""

from pathlib import Path

from services.runtime.config import DEFAULT_PORTS, ServedConfig


class IngestionConfig(ServedConfig):
    grpc_port: int = DEFAULT_PORTS["ingestion"]
    # The SFTP server customers upload to (CANOPY_SFTP_HOST, CANOPY_SFTP_PORT).
    sftp_host: str = "127.0.0.1"
    sftp_port: int = 2222
    # Uploaded files: `<storage_dir>/<account_id>/<dropzone_id>/.files/<file_id>`, with
    # unfinished uploads in `<storage_dir>/.partial/` (CANOPY_STORAGE_DIR).
    storage_dir: Path = Path("var/ingestion/store")
    # The SSH host key, generated on first start and reused (CANOPY_HOST_KEY_PATH).
    host_key_path: Path = Path("var/ingestion/ssh_host_ed25519_key")
    # ReadFileContent streams a file in chunks of this size (CANOPY_CONTENT_CHUNK_BYTES).
    content_chunk_bytes: int = 1024 * 1024
    # An upload that grows beyond this is refused (CANOPY_MAX_UPLOAD_BYTES).
    max_upload_bytes: int = 64 * 1024**3
