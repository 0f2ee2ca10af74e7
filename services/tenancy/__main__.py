"""`python -m services.tenancy [serve|migrate]`: serve gRPC (the default) or migrate the schema."""

import argparse
import asyncio

from services.runtime.context import ContextTokens
from services.runtime.host import serve
from services.runtime.logs import configure_logging
from services.runtime.migrations import migrate
from services.tenancy.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.tenancy.config import TenancyConfig


async def run(config: TenancyConfig) -> None:
    async with bootstrap(config) as app:
        await serve(
            app,
            address=f"{config.grpc_host}:{config.grpc_port}",
            tokens=ContextTokens(config.context_key),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.tenancy",
        description="The tenancy service: accounts, tenants, mapping codes and data keys.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve gRPC until SIGTERM/Ctrl-C (default), or migrate the tenancy schema",
    )
    args = parser.parse_args(argv)
    config = TenancyConfig()
    configure_logging("tenancy", config.log_level)
    if args.command == "migrate":
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        return
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
