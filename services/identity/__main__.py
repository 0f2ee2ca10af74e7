"""python -m services.identity [serve|migrate]: serve gRPC (default) or migrate the schema."""

from services.identity.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.identity.config import IdentityConfig
from services.runtime.host import service_main


def main() -> None:
    service_main(
        schema=SCHEMA,
        description=__doc__ or "",
        config_type=IdentityConfig,
        bootstrap=bootstrap,
        migrations_dir=MIGRATIONS_DIR,
    )


if __name__ == "__main__":
    main()
