"""`python -m services.tenancy [serve|migrate]`: serve gRPC (the default) or migrate the schema."""

from services.runtime.host import service_main
from services.tenancy.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.tenancy.config import TenancyConfig


def main() -> None:
    service_main(
        schema=SCHEMA,
        description=__doc__ or "",
        config_type=TenancyConfig,
        bootstrap=bootstrap,
        migrations_dir=MIGRATIONS_DIR,
    )


if __name__ == "__main__":
    main()
