"""Running one service process: its backends, gRPC server and background loops, until a signal."""

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from services.runtime.config import RuntimeConfig, ServedConfig
from services.runtime.context import ContextTokens
from services.runtime.db import Database
from services.runtime.grpc_server import Registration, start_grpc_server
from services.runtime.logs import configure_logging
from services.runtime.messaging import connect_nats, ensure_streams
from services.runtime.metrics import expose_metrics
from services.runtime.migrations import migrate

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Backends:
    db: Database
    nats: NatsClient
    js: JetStreamContext
    tokens: ContextTokens


@asynccontextmanager
async def open_backends(
    config: RuntimeConfig, *, schema: str, pool_size: int = 10
) -> AsyncIterator[Backends]:
    """The database (as the schema's app role), NATS with every stream, and the token keys."""
    db = Database(config.app_url(schema), pool_size=pool_size)
    nc = await connect_nats(config.nats_url, name=schema)
    try:
        js = nc.jetstream()
        await ensure_streams(js, replicas=config.nats_stream_replicas)
        yield Backends(db=db, nats=nc, js=js, tokens=ContextTokens(config.context_key))
    finally:
        await nc.drain() if nc.is_connected else await nc.close()
        await db.dispose()


@dataclass
class ServiceApp:
    """What a service's bootstrap hands the host: gRPC servicers and background loops."""

    pb2_modules: list[ModuleType]
    registrations: list[Registration]
    loops: list[Loop] = field(default_factory=list)


async def serve(
    app: ServiceApp, *, address: str, tokens: ContextTokens, stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`); a background loop that dies stops the process."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await start_grpc_server(
        address=address, tokens=tokens, pb2_modules=app.pb2_modules, registrations=app.registrations
    )
    tasks = [asyncio.create_task(run(stop)) for run in app.loops]
    for task in tasks:
        task.add_done_callback(lambda t: _stop_if_crashed(t, stop))
    await stop.wait()
    await server.stop(grace=5)
    done, pending = await asyncio.wait(tasks, timeout=10) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    log.info("stopped")


def _stop_if_crashed(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background loop crashed; stopping", exc_info=task.exception())
        stop.set()


def service_main(
    *,
    schema: str,
    description: str,
    config_type: type[ServedConfig],
    bootstrap: Callable[[Any], AbstractAsyncContextManager[ServiceApp]],
    migrations_dir: Path,
    argv: list[str] | None = None,
) -> None:
    """`python -m services.<schema> [serve|migrate]`: the one entrypoint of every service."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{schema}", description=description)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    config = config_type()
    configure_logging(schema, config.log_level)
    if args.command == "migrate":
        migrate(config, schema, migrations_dir)
        return
    expose_metrics(config.grpc_host, config.metrics_port)

    async def serve_until_stopped() -> None:
        async with bootstrap(config) as app:
            address = f"{config.grpc_host}:{config.grpc_port}"
            await serve(app, address=address, tokens=ContextTokens(config.context_key))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_stopped())
