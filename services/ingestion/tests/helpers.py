"""Helpers for the ingestion tests: a fake tenant directory, callers, SFTP clients, events."""

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncssh
import grpc
from google.protobuf.message import Message
from nats.js import JetStreamContext

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from services.ingestion.adapters.db import tables
from services.ingestion.bootstrap import SCHEMA, policies
from services.ingestion.config import IngestionConfig
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import ContextTokens, service_context
from services.runtime.db import Database
from services.runtime.events import new_event
from services.runtime.grpc_server import context_of_call
from services.runtime.outbox import Outbox
from tests.support import caller

EVERYTHING = (
    "ingestion.dropzones:read",
    "ingestion.dropzones:write",
    "ingestion.files:read",
    "ingestion.files:write",
    "ingestion.files:content",
)
PASSWORD = "correct horse battery staple"
MIB = 1024 * 1024
REJECTS_HEADER = b"row_number,column,reason,id,name\n"


class StandInCanonical(canonical_pb2_grpc.CanonicalServiceServicer):
    """canonical's ExportRejects: CSV rows per file id, and who asked with what permissions."""

    def __init__(self) -> None:
        self.address = ""
        self.rejects: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.calls: list[tuple[str, frozenset[str]]] = []

    async def ExportRejects(
        self, request: canonical_pb2.ExportRejectsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[canonical_pb2.RejectsChunk]:
        ctx = context_of_call()
        self.calls.append((request.file_id, ctx.permissions))
        if request.file_id in self.missing:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no rejects for that file")
        content = self.rejects.get(request.file_id, REJECTS_HEADER)
        for start in range(0, len(content), 7):  # small chunks: the stream is reassembled
            yield canonical_pb2.RejectsChunk(data=content[start : start + 7])


class FakeTenantDirectory:
    """Tenants known per account, in memory."""

    def __init__(self) -> None:
        self.tenants: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)

    def add(self, account_id: uuid.UUID) -> uuid.UUID:
        tenant_id = uuid.uuid4()
        self.tenants[account_id].add(tenant_id)
        return tenant_id

    async def unknown_tenants(
        self,
        account_id: uuid.UUID,
        tenant_ids: Sequence[uuid.UUID],
        *,
        correlation_id: str | None = None,
    ) -> list[uuid.UUID]:
        return [t for t in tenant_ids if t not in self.tenants[account_id]]


@dataclass
class Service:
    channel: grpc.aio.Channel
    config: IngestionConfig
    tokens: ContextTokens
    tenants: FakeTenantDirectory
    js: JetStreamContext
    canonical: StandInCanonical
    stub: ingestion_pb2_grpc.IngestionServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.stub = ingestion_pb2_grpc.IngestionServiceStub(self.channel)

    @asynccontextmanager
    async def ports(self) -> AsyncIterator[Ports]:
        """The use cases' ports on the service's own database, to call them directly."""
        db = Database(self.config.app_url(SCHEMA), pool_size=2)
        try:
            yield Ports(
                db=db,
                outbox=Outbox(tables.outbox),
                tenants=self.tenants,
                store=None,  # type: ignore[arg-type]
                policies=policies(self.config),
            )
        finally:
            await db.dispose()

    def account(self) -> "Account":
        account_id = uuid.uuid4()
        return Account(self, account_id, self.tenants.add(account_id))


@dataclass
class Account:
    service: Service
    id: uuid.UUID
    tenant_id: uuid.UUID

    def metadata(self, permissions: Sequence[str] = EVERYTHING) -> tuple[tuple[str, str], ...]:
        return self.service.tokens.metadata(caller(self.id, permissions))

    async def dropzone(
        self, routes: Sequence[tuple[str, str]] = (("customers_*.csv", "dms_customers"),)
    ) -> ingestion_pb2.DropZone:
        return await self.service.stub.CreateDropZone(
            ingestion_pb2.CreateDropZoneRequest(
                name=f"zone-{uuid.uuid4().hex[:8]}",
                tenant_ids=[str(self.tenant_id)],
                routes=[ingestion_pb2.Route(pattern=p, source_schema=s) for p, s in routes],
            ),
            metadata=self.metadata(),
        )

    async def login(self, zone: ingestion_pb2.DropZone) -> ingestion_pb2.SftpLogin:
        return await self.service.stub.CreateSftpLogin(
            ingestion_pb2.CreateSftpLoginRequest(
                dropzone_id=zone.id, username=unique_username(), password=PASSWORD
            ),
            metadata=self.metadata(),
        )

    async def files(self, zone: ingestion_pb2.DropZone) -> list[ingestion_pb2.IngestedFile]:
        response = await self.service.stub.ListFiles(
            ingestion_pb2.ListFilesRequest(dropzone_id=zone.id), metadata=self.metadata()
        )
        return list(response.files)

    async def file_named(
        self, zone: ingestion_pb2.DropZone, name: str
    ) -> ingestion_pb2.IngestedFile:
        matches = [f for f in await self.files(zone) if f.name == name]
        assert matches, f"{name} was not recorded"
        return matches[0]


def unique_username() -> str:
    return f"dealer-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def sftp_connection(
    config: IngestionConfig, username: str, password: str = PASSWORD, **options: object
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    async with asyncssh.connect(
        config.sftp_host,
        config.sftp_port,
        username=username,
        password=password,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        **options,
    ) as conn:
        yield conn


@asynccontextmanager
async def sftp_client(
    config: IngestionConfig, username: str, password: str = PASSWORD
) -> AsyncIterator[asyncssh.SFTPClient]:
    async with sftp_connection(config, username, password) as conn:
        async with conn.start_sftp_client() as sftp:
            yield sftp


async def upload(sftp: asyncssh.SFTPClient, name: str, content: bytes) -> None:
    """Upload `content` as `name` (a bare name goes into incoming/)."""
    path = name if isinstance(name, bytes) or "/" in name else f"incoming/{name}"
    async with sftp.open(path, "wb") as remote:
        await remote.write(content)


async def wait_for_port(host: str, port: int, within: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def eventually(check: Callable[[], object], within: float = 10) -> None:
    """Retry an async assertion until it passes or the time is up."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await check()  # type: ignore[misc]
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def published(
    js: JetStreamContext,
    subject: str,
    matches: Callable[[events_pb2.Event], bool],
    *,
    within: float = 10,
) -> events_pb2.Event:
    """The first event on JetStream under `subject` that `matches`."""
    subscription = await js.subscribe(subject, ordered_consumer=True)
    deadline = asyncio.get_running_loop().time() + within
    try:
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no matching event on {subject}")
            try:
                message = await subscription.next_msg(timeout=remaining)
            except TimeoutError:
                continue
            event = events_pb2.Event.FromString(message.data)
            if matches(event):
                return event
    finally:
        await subscription.unsubscribe()


async def all_published(js: JetStreamContext, subject: str) -> list[events_pb2.Event]:
    """Every event stored under `subject` so far."""
    subscription = await js.subscribe(subject, ordered_consumer=True)
    events = []
    try:
        while True:
            try:
                message = await subscription.next_msg(timeout=0.5)
            except TimeoutError:
                return events
            events.append(events_pb2.Event.FromString(message.data))
    finally:
        await subscription.unsubscribe()


async def publish(
    service: Service,
    event_type: str,
    payload: Message,
    account_id: uuid.UUID,
    *,
    by: str = "canonical",
) -> None:
    """Publish an event as another service would (through its outbox relay)."""
    event = new_event(
        event_type,
        payload,
        account_id=account_id,
        ctx=service_context(by, account_id=account_id, permissions=()),
    )
    await service.js.publish(
        event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
    )


@asynccontextmanager
async def connect(
    config: IngestionConfig,
    username: str,
    *,
    password: str | None = None,
    client_keys: Sequence[asyncssh.SSHKey] | None = None,
    source: str = "127.0.0.1",
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """An SSH connection from `source` (any 127.x address reaches the loopback listener)."""
    async with asyncssh.connect(
        config.sftp_host,
        config.sftp_port,
        username=username,
        password=password,
        client_keys=list(client_keys) if client_keys else None,
        known_hosts=None,
        agent_path=None,
        local_addr=(source, 0),
        preferred_auth="publickey" if client_keys else "password",
    ) as conn:
        yield conn


def fresh_source() -> str:
    """A loopback address of its own, so a test's failed sign-ins lock nobody else out."""
    octets = uuid.uuid4().bytes[:3]
    return f"127.{octets[0] % 200 + 20}.{octets[1] % 250 + 1}.{octets[2] % 250 + 1}"
