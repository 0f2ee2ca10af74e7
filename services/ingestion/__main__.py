"""`python -m services.ingestion [serve|migrate]`: serve gRPC and SFTP, or migrate the schema."""

from services.ingestion.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.ingestion.config import IngestionConfig
from services.runtime.host import service_main


def main() -> None:
    service_main(
        schema=SCHEMA,
        description=__doc__ or "",
        config_type=IngestionConfig,
        bootstrap=bootstrap,
        migrations_dir=MIGRATIONS_DIR,
    )


if __name__ == "__main__":
    main()
