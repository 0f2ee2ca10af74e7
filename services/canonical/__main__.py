"""`python -m services.canonical [serve|migrate]`: serve the canonical service, or migrate."""

from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.runtime.host import service_main


def main() -> None:
    service_main(
        schema=SCHEMA,
        description=__doc__ or "",
        config_type=CanonicalConfig,
        bootstrap=bootstrap,
        migrations_dir=MIGRATIONS_DIR,
    )


if __name__ == "__main__":
    main()
