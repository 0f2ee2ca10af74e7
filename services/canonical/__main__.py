"""`python -m services.canonical [serve|migrate]`: serve the canonical service, or migrate."""

import argparse
import asyncio
import contextlib

from services.canonical.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.canonical.config import CanonicalConfig
from services.runtime.context import ContextTokens
from services.runtime.host import serve
from services.runtime.logs import configure_logging
from services.runtime.migrations import migrate


async def run(config: CanonicalConfig) -> None:
    async with bootstrap(config) as app:
        await serve(
            app,
            address=f"{config.grpc_host}:{config.grpc_port}",
            tokens=ContextTokens(config.context_key),
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.canonical", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args()
    config = CanonicalConfig()
    configure_logging(SCHEMA, config.log_level)
    if args.command == "migrate":
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        return
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config))


if __name__ == "__main__":
    main()
