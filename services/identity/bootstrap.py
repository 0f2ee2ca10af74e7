"""The identity service's composition root: backends, stores, signer, ports, servicer, loops."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import MetaData

from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from services.identity.adapters.catalogue import permission_catalogue
from services.identity.adapters.db.tables import identity_tables
from services.identity.adapters.events.fences import NatsFences
from services.identity.adapters.events.handlers import (
    ACCOUNT_CREATED,
    ACCOUNTS_CONSUMER,
    AccountCreatedHandler,
)
from services.identity.adapters.grpc.servicer import IdentityServicer
from services.identity.adapters.grpc.tenancy import GrpcTenantDirectory
from services.identity.config import IdentityConfig
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.ports import DomainVerifier, NoDns, TenantDirectory
from services.identity.service_layer.signing import TokenSigner
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.clients import ServiceChannels
from services.runtime.host import ServiceApp, open_backends
from services.runtime.keywrap import KeyWrapper
from services.runtime.messaging import EventConsumer
from services.runtime.outbox import Outbox, OutboxRelay

SCHEMA = "identity"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@asynccontextmanager
async def bootstrap(
    config: IdentityConfig,
    *,
    passwords: Passwords | None = None,
    tenants: TenantDirectory | None = None,
    verifier: DomainVerifier | None = None,
    pool_size: int = 10,
) -> AsyncIterator[ServiceApp]:
    """Open the backends, make sure a signing key exists, and hand the host the service.

    `tenants` replaces the gRPC client of tenancy and `verifier` the DNS TXT lookup (tests).
    """
    channels = ServiceChannels(config)
    async with open_backends(config, schema=SCHEMA, pool_size=pool_size) as backends:
        try:
            tables = identity_tables(MetaData(schema=SCHEMA))
            fences = NatsFences(backends.nats, ack_timeout=config.authz_fence_ack_seconds)
            store = IdentityStore(backends.db, tables, Outbox(tables.outbox), fences)
            passwords = passwords or Passwords(
                time_cost=config.argon2_time_cost,
                memory_cost_kib=config.argon2_memory_cost_kib,
                parallelism=config.argon2_parallelism,
            )
            await passwords.prepare()
            signer = TokenSigner(
                wrapper=KeyWrapper(config.key_encryption_key),
                lifetime_seconds=config.token_lifetime_seconds,
            )
            await signer.load_or_create(store)
            catalogue = permission_catalogue()
            deps = Deps(
                store=store,
                passwords=passwords,
                signer=signer,
                tenants=tenants or GrpcTenantDirectory(channels, backends.tokens),
                verifier=verifier or NoDns(),
                catalogue=catalogue,
                refresh_lifetime_seconds=config.refresh_token_lifetime_seconds,
                authz_lease_seconds=config.authz_lease_seconds,
            )
            relay = OutboxRelay(backends.db, tables.outbox, backends.js)
            accounts = EventConsumer(
                db=backends.db,
                js=backends.js,
                processed=tables.processed_events,
                durable=ACCOUNTS_CONSUMER,
                context="tenancy",
                filter_subject=ACCOUNT_CREATED,
                handler=AccountCreatedHandler(store, catalogue),
            )
            yield ServiceApp(
                pb2_modules=[identity_pb2],
                registrations=[
                    (
                        identity_pb2_grpc.add_IdentityServiceServicer_to_server,
                        IdentityServicer(deps),
                    )
                ],
                loops=[relay.run, accounts.run],
            )
        finally:
            await channels.close()
