"""python -m services.identity [serve|migrate]: serve gRPC (default) or migrate the schema."""

import argparse
import asyncio
import contextlib

from services.identity.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.identity.config import IdentityConfig
from services.runtime.context import ContextTokens
from services.runtime.host import serve
from services.runtime.logs import configure_logging
from services.runtime.migrations import migrate


async def _serve(config: IdentityConfig) -> None:
    async with bootstrap(config) as app:
        await serve(
            app,
            address=f"{config.grpc_host}:{config.grpc_port}",
            tokens=ContextTokens(config.context_key),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.identity", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("serve", "migrate"), default="serve")
    args = parser.parse_args(argv)
    config = IdentityConfig()
    configure_logging(SCHEMA, config.log_level)
    if args.command == "migrate":
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config))


if __name__ == "__main__":
    main()
