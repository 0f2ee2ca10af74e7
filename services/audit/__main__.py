"""`python -m services.audit [serve|migrate]`: serve gRPC and consume events, or migrate."""

from services.audit.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.audit.config import AuditConfig
from services.runtime.host import service_main


def main() -> None:
    service_main(
        schema=SCHEMA,
        description=__doc__ or "",
        config_type=AuditConfig,
        bootstrap=bootstrap,
        migrations_dir=MIGRATIONS_DIR,
    )


if __name__ == "__main__":
    main()
