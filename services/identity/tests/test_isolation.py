"""No request crosses an account; no token, no call; no context, no rows; keys kept wrapped."""

import asyncio
import uuid
from urllib.parse import urlsplit

import grpc
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import MetaData, text

from canopy.identity.v1 import identity_pb2
from services.identity.adapters.db.tables import identity_tables
from services.identity.bootstrap import MIGRATIONS_DIR, SCHEMA
from services.identity.config import IdentityConfig
from services.identity.service_layer.signing import TokenSigner, wrap_purpose
from services.identity.service_layer.unit_of_work import IdentityStore
from services.identity.tests.fakes import NobodyListens
from services.identity.tests.helpers import (
    PASSWORD,
    create_user,
    metadata,
    rpc_error,
    service_metadata,
)
from services.runtime.config import libpq_url
from services.runtime.context import ContextTokens
from services.runtime.db import Database, Scope
from services.runtime.keywrap import KeyWrapper
from services.runtime.migrations import migrate
from services.runtime.outbox import Outbox


async def test_a_second_account_cannot_list_or_grant_the_first_accounts_users(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first, role="staff")
    await create_user(stub, tokens, second, role="staff")

    listed = await stub.ListUsers(
        identity_pb2.ListUsersRequest(), metadata=metadata(tokens, second)
    )
    first_roles = await stub.ListRoles(
        identity_pb2.ListRolesRequest(), metadata=metadata(tokens, first)
    )
    second_roles = await stub.ListRoles(
        identity_pb2.ListRolesRequest(), metadata=metadata(tokens, second)
    )
    grant = await rpc_error(
        stub.GrantRole(
            identity_pb2.GrantRoleRequest(user_id=user.id, role="admin"),
            metadata=metadata(tokens, second),
        )
    )

    assert user.id not in [u.id for u in listed.users]
    assert not {r.id for r in first_roles.roles} & {r.id for r in second_roles.roles}
    assert grant.code() == grpc.StatusCode.NOT_FOUND


async def test_calls_without_an_account_or_permission_or_token_are_refused(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    request = identity_pb2.CreateUserRequest(email="x@example.com", password="long enough pw")

    no_permission = await rpc_error(
        stub.CreateUser(request, metadata=metadata(tokens, account, "identity.users:read"))
    )
    no_token = await rpc_error(stub.ListUsers(identity_pb2.ListUsersRequest()))
    no_account = await rpc_error(stub.CreateUser(request, metadata=metadata(tokens, None)))
    forged = await rpc_error(
        stub.ListUsers(identity_pb2.ListUsersRequest(), metadata=(("x-canopy-context", "forged"),))
    )

    assert no_permission.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_account.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_token.code() == forged.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_app_role_without_context_sees_no_account_rows(
    stub, tokens: ContextTokens, identity_config: IdentityConfig
) -> None:
    await create_user(stub, tokens, uuid.uuid4(), role="admin")
    db = Database(identity_config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.nothing()) as session:
            counts = [
                (await session.execute(text(f"SELECT count(*) FROM identity.{table}"))).scalar()
                for table in ("memberships", "roles", "role_grants")
            ]
    finally:
        await db.dispose()
    with psycopg.connect(libpq_url(identity_config.app_url(SCHEMA))) as conn:
        raw = conn.execute("SELECT count(*) FROM identity.memberships").fetchone()

    assert counts == [0, 0, 0]
    assert raw == (0,)


async def test_the_signing_key_is_stored_wrapped_and_matches_the_jwks(
    stub, identity_config: IdentityConfig, database_url: str
) -> None:
    jwks = await stub.GetJwks(identity_pb2.GetJwksRequest())
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT kid, private_key_wrapped, public_key FROM identity.signing_keys"
            " WHERE retired_at IS NULL"
        ).fetchall()

    ((kid, wrapped, public),) = rows
    private = KeyWrapper(identity_config.key_encryption_key).unwrap(
        bytes(wrapped), purpose=wrap_purpose(kid)
    )
    assert private not in bytes(wrapped)
    assert Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw() == public
    # The active key comes first; keys retired by a rotation may follow for a while.
    assert jwks.keys[0].kid == kid


async def test_replicas_starting_together_create_one_signing_key(
    identity_config: IdentityConfig, database_url: str
) -> None:
    # A database of its own, so the signing-key table starts empty.
    name = f"identity_race_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    config = identity_config.model_copy(
        update={"database_url": urlsplit(database_url)._replace(path=f"/{name}").geturl()}
    )
    try:
        migrate(config, SCHEMA, MIGRATIONS_DIR)
        db = Database(config.app_url(SCHEMA), pool_size=4)
        tables = identity_tables(MetaData(schema=SCHEMA))
        store = IdentityStore(db, tables, Outbox(tables.outbox), NobodyListens())
        wrapper = KeyWrapper(config.key_encryption_key)
        try:
            kids = await asyncio.gather(
                *(
                    TokenSigner(wrapper=wrapper, lifetime_seconds=60).load_or_create(store)
                    for _ in range(4)
                )
            )
        finally:
            await db.dispose()
        with psycopg.connect(config.database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM identity.signing_keys").fetchone()
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    assert len(set(kids)) == 1
    assert stored == (1,)


async def test_a_deactivated_user_cannot_sign_in_and_holds_nothing(
    stub, tokens: ContextTokens, database_url: str
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="admin")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE identity.users SET status = 'deactivated', deactivated_at = now()"
            " WHERE id = %s",
            [user.id],
        )

    refused = await rpc_error(
        stub.IssueToken(identity_pb2.IssueTokenRequest(email=user.email, password=PASSWORD))
    )
    resolved = await stub.Resolve(
        identity_pb2.ResolveRequest(principal_id=user.id, account_id=str(account)),
        metadata=service_metadata(tokens),
    )

    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (resolved.member, list(resolved.permissions)) == (False, [])
