"""Running one service process: its backends, gRPC server and background loops, until a signal."""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from services.runtime.config import RuntimeConfig
from services.runtime.context import ContextTokens
from services.runtime.db import Database
from services.runtime.grpc_server import Registration, start_grpc_server
from services.runtime.messaging import connect_nats, ensure_streams

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
