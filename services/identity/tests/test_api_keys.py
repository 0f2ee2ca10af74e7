"""Service accounts and API keys: shown once, stored hashed, scoped, expiring, revocable."""

import uuid

import grpc
import psycopg

from canopy.identity.v1 import identity_pb2
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    grant,
    metadata,
    resolve,
    rpc_error,
    service_metadata,
    user_metadata,
)
from services.runtime.context import ContextTokens


async def authenticate(stub, tokens: ContextTokens, key: str):  # type: ignore[no-untyped-def]
    return await stub.AuthenticateApiKey(
        identity_pb2.AuthenticateApiKeyRequest(key=key), metadata=service_metadata(tokens)
    )


async def robot(stub, tokens: ContextTokens, account: uuid.UUID, role: str = "staff"):  # type: ignore[no-untyped-def]
    return await stub.CreateServiceAccount(
        identity_pb2.CreateServiceAccountRequest(
            name=f"loader {uuid.uuid4().hex[:6]}", description="nightly loads", role=role
        ),
        metadata=metadata(tokens, account),
    )


async def new_key(stub, tokens, account, service_account_id, *permissions, days=0):  # type: ignore[no-untyped-def]
    return await stub.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            service_account_id=service_account_id,
            name="ci",
            permissions=list(permissions),
            expires_in_days=days,
        ),
        metadata=metadata(tokens, account),
    )


async def test_a_service_accounts_key_authenticates_as_it_with_its_subset(
    stub, tokens: ContextTokens, database_url: str
) -> None:
    account = uuid.uuid4()
    sa = await robot(stub, tokens, account)
    created = await new_key(stub, tokens, account, sa.id, "canonical.records:read")

    who = await authenticate(stub, tokens, created.key)
    resolved = await resolve(stub, tokens, sa.id)
    listed = await stub.ListApiKeys(
        identity_pb2.ListApiKeysRequest(service_account_id=sa.id),
        metadata=metadata(tokens, account),
    )

    assert created.key.startswith(created.api_key.prefix + "_")
    assert created.api_key.prefix.startswith("cpy_")
    assert (who.principal_id, who.principal_kind, who.account_id, list(who.permissions)) == (
        sa.id,
        "service_account",
        str(account),
        ["canonical.records:read"],
    )
    assert resolved.member and resolved.principal_kind == "service_account"
    assert set(resolved.permissions) == PRESET_ROLES["staff"]
    (shown,) = listed.api_keys
    assert shown.last_used_at.seconds > 0 and shown.id == who.api_key_id
    secret = created.key.rsplit("_", 1)[1]
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute(
            "SELECT secret_hash FROM identity.api_keys WHERE id = %s", [who.api_key_id]
        ).fetchone()
    assert secret.encode() not in bytes(stored) and created.key.encode() not in bytes(stored)


async def test_a_key_cannot_hold_more_than_its_owner(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    sa = await robot(stub, tokens, account, role="customer")

    refused = await rpc_error(new_key(stub, tokens, account, sa.id, "identity.users:write"))
    unknown = await rpc_error(new_key(stub, tokens, account, sa.id, "nope.things:do"))
    too_long = await rpc_error(new_key(stub, tokens, account, sa.id, days=400))

    assert refused.code() == unknown.code() == too_long.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "identity.users:write" in refused.details()


async def test_wrong_expired_revoked_and_orphaned_keys_are_unauthenticated(
    stub, tokens: ContextTokens, database_url: str
) -> None:
    account = uuid.uuid4()
    sa = await robot(stub, tokens, account)
    meta = metadata(tokens, account)
    good = await new_key(stub, tokens, account, sa.id)
    expired = await new_key(stub, tokens, account, sa.id)
    revoked = await new_key(stub, tokens, account, sa.id)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE identity.api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
            [expired.api_key.id],
        )
    await stub.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=revoked.api_key.id), metadata=meta
    )
    prefix, secret = good.key.split("_", 2)[1], good.key.split("_", 2)[2]
    forged = f"cpy_{prefix}_{'A' * len(secret)}"

    attempts = [forged, expired.key, revoked.key, "cpy_nothing", "", good.key + "x"]
    errors = [await rpc_error(authenticate(stub, tokens, k)) for k in attempts]
    assert {e.code() for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}
    assert (await authenticate(stub, tokens, good.key)).principal_id == sa.id

    await stub.DeleteServiceAccount(
        identity_pb2.DeleteServiceAccountRequest(service_account_id=sa.id), metadata=meta
    )
    orphaned = await rpc_error(authenticate(stub, tokens, good.key))
    gone = await resolve(stub, tokens, sa.id, str(account))
    assert orphaned.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not gone.member and not gone.permissions


async def test_last_use_is_written_at_most_once_a_minute(
    stub, tokens: ContextTokens, database_url: str
) -> None:
    account = uuid.uuid4()
    sa = await robot(stub, tokens, account)
    created = await new_key(stub, tokens, account, sa.id)

    def last_used():  # type: ignore[no-untyped-def]
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT last_used_at, xmin::text FROM identity.api_keys WHERE id = %s",
                [created.api_key.id],
            ).fetchone()

    await authenticate(stub, tokens, created.key)
    first = last_used()
    for _ in range(3):
        await authenticate(stub, tokens, created.key)
    assert last_used() == first  # same row version: no write


async def test_a_users_personal_key_follows_its_membership(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="admin")
    user = await create_user(stub, tokens, account, role="staff")
    mine = user_metadata(tokens, account, user.id)
    created = await stub.CreateMyApiKey(
        identity_pb2.CreateMyApiKeyRequest(name="laptop", permissions=["canonical.records:read"]),
        metadata=mine,
    )
    too_much = await rpc_error(
        stub.CreateMyApiKey(
            identity_pb2.CreateMyApiKeyRequest(permissions=["identity.users:write"]), metadata=mine
        )
    )
    who = await authenticate(stub, tokens, created.key)
    listed = await stub.ListMyApiKeys(identity_pb2.ListMyApiKeysRequest(), metadata=mine)

    assert (who.principal_id, who.principal_kind) == (user.id, "user")
    assert [k.id for k in listed.api_keys] == [created.api_key.id]
    assert too_much.code() == grpc.StatusCode.INVALID_ARGUMENT

    await stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=metadata(tokens, account)
    )
    deactivated = await rpc_error(authenticate(stub, tokens, created.key))
    await stub.RestoreUser(
        identity_pb2.RestoreUserRequest(user_id=user.id), metadata=metadata(tokens, account)
    )
    assert (await authenticate(stub, tokens, created.key)).principal_id == user.id
    await stub.RevokeMyApiKey(
        identity_pb2.RevokeMyApiKeyRequest(api_key_id=created.api_key.id), metadata=mine
    )
    revoked = await rpc_error(authenticate(stub, tokens, created.key))
    assert deactivated.code() == revoked.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_one_user_cannot_revoke_anothers_personal_key(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    ann = await create_user(stub, tokens, account, role="staff")
    bob = await create_user(stub, tokens, account, role="staff")
    created = await stub.CreateMyApiKey(
        identity_pb2.CreateMyApiKeyRequest(), metadata=user_metadata(tokens, account, ann.id)
    )
    error = await rpc_error(
        stub.RevokeMyApiKey(
            identity_pb2.RevokeMyApiKeyRequest(api_key_id=created.api_key.id),
            metadata=user_metadata(tokens, account, bob.id),
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await authenticate(stub, tokens, created.key)).principal_id == ann.id


async def test_service_accounts_are_per_account_and_get_grants_like_users(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    sa = await robot(stub, tokens, first, role="")
    await grant(stub, tokens, first, sa.id, "auditor")
    listed = await stub.ListServiceAccounts(
        identity_pb2.ListServiceAccountsRequest(), metadata=metadata(tokens, second)
    )
    foreign_key = await rpc_error(new_key(stub, tokens, second, sa.id))
    foreign_grant = await rpc_error(grant(stub, tokens, second, sa.id, "admin"))
    elsewhere = await resolve(stub, tokens, sa.id, str(second))

    assert set((await resolve(stub, tokens, sa.id)).permissions) == PRESET_ROLES["auditor"]
    assert sa.id not in [s.id for s in listed.service_accounts]
    assert foreign_key.code() == foreign_grant.code() == grpc.StatusCode.NOT_FOUND
    assert not elsewhere.member and not elsewhere.permissions
