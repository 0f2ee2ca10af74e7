"""`python -m services.audit [serve|migrate]`: serve gRPC and consume events, or migrate."""

import argparse
import asyncio
import contextlib

from services.audit.bootstrap import MIGRATIONS_DIR, SCHEMA, bootstrap
from services.audit.config import AuditConfig
from services.runtime.context import ContextTokens
from services.runtime.host import serve
from services.runtime.logs import configure_logging
from services.runtime.migrations import migrate


async def run(config: AuditConfig) -> None:
    async with bootstrap(config) as app:
        await serve(
            app,
            address=f"{config.grpc_host}:{config.grpc_port}",
            tokens=ContextTokens(config.context_key),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.audit", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    config = AuditConfig()
    configure_logging("audit", config.log_level)
    if args.command == "migrate":
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
