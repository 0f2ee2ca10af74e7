"""`python -m services.ingestion [serve|migrate]`: serve gRPC and SFTP, or migrate the schema."""

import argparse
import asyncio

from services.ingestion.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.ingestion.config import IngestionConfig
from services.runtime.context import ContextTokens
from services.runtime.host import serve
from services.runtime.logs import configure_logging
from services.runtime.migrations import migrate


async def _serve(config: IngestionConfig) -> None:
    async with bootstrap(config) as app:
        await serve(
            app,
            address=f"{config.grpc_host}:{config.grpc_port}",
            tokens=ContextTokens(config.context_key),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.ingestion",
        description="Drop zones, SFTP logins and ingested files.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve gRPC and SFTP until SIGTERM (default), or migrate the schema",
    )
    args = parser.parse_args(argv)
    config = IngestionConfig()
    configure_logging("ingestion", config.log_level)
    if args.command == "migrate":
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        return
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
