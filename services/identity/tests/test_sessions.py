"""Tokens for one account, switching accounts, /me, refresh rotation, lockout, key rotation."""

import uuid

import grpc
import jwt
import psycopg
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from services.identity.tests.fakes import FakeTenantDirectory
from services.identity.tests.helpers import (
    PASSWORD,
    create_user,
    eventually,
    metadata,
    published,
    rpc_error,
    sign_in,
    unique_email,
    user_metadata,
)
from services.runtime.context import ContextTokens, service_context
from services.runtime.events import unpack


def claims_of(token: identity_pb2.Token) -> dict:
    return jwt.decode(token.access_token, options={"verify_signature": False})


async def test_a_user_of_several_accounts_signs_in_to_the_one_it_names(
    stub, tokens: ContextTokens, tenant_tree: FakeTenantDirectory
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first)
    await create_user(stub, tokens, second, email=user.email)
    tenant_tree.slugs[f"dg-{second.hex[:8]}"] = second

    unnamed = await sign_in(stub, user.email)
    by_id = await sign_in(stub, user.email, account=str(first))
    by_slug = await sign_in(stub, user.email, account=f"dg-{second.hex[:8]}")
    stranger = await rpc_error(sign_in(stub, user.email, account=str(uuid.uuid4())))

    assert "acc" not in claims_of(unnamed) and not unnamed.account_id
    assert claims_of(by_id)["acc"] == str(first) == by_id.account_id
    assert claims_of(by_slug)["acc"] == str(second)
    assert stranger.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_switching_account_gives_a_token_for_the_other_account_only_to_members(
    stub, tokens: ContextTokens
) -> None:
    first, second, foreign = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first)
    await create_user(stub, tokens, second, email=user.email)

    switched = await stub.SwitchAccount(
        identity_pb2.SwitchAccountRequest(account_id=str(second)),
        metadata=user_metadata(tokens, first, user.id),
    )
    refused = await rpc_error(
        stub.SwitchAccount(
            identity_pb2.SwitchAccountRequest(account_id=str(foreign)),
            metadata=user_metadata(tokens, first, user.id),
        )
    )
    service = await rpc_error(
        stub.SwitchAccount(
            identity_pb2.SwitchAccountRequest(account_id=str(second)),
            metadata=tokens.metadata(service_context("ingestion", account_id=None, permissions=())),
        )
    )
    anonymous = await rpc_error(
        stub.SwitchAccount(identity_pb2.SwitchAccountRequest(account_id=str(second)))
    )

    assert claims_of(switched)["acc"] == str(second) and switched.refresh_token
    assert claims_of(switched)["sub"] == user.id
    assert refused.code() == service.code() == grpc.StatusCode.PERMISSION_DENIED
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_me_lists_the_user_and_its_memberships(stub, tokens: ContextTokens) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first)
    await create_user(stub, tokens, second, email=user.email)
    await create_user(stub, tokens, second, role="admin")
    await stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=metadata(tokens, second)
    )

    me = await stub.GetMe(
        identity_pb2.GetMeRequest(), metadata=user_metadata(tokens, first, user.id)
    )

    assert (me.user.id, me.user.email, me.active_account_id) == (user.id, user.email, str(first))
    assert {(m.account_id, m.status) for m in me.memberships} == {
        (str(first), "active"),
        (str(second), "deactivated"),
    }


async def test_a_refresh_token_is_single_use_and_its_reuse_revokes_the_family(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    user = await create_user(stub, tokens, uuid.uuid4())
    first = await sign_in(stub, user.email)

    second = await stub.RefreshToken(
        identity_pb2.RefreshTokenRequest(refresh_token=first.refresh_token)
    )
    async with published(nats_client, "canopy.identity.refresh_token.reused") as events:
        replay = await rpc_error(
            stub.RefreshToken(identity_pb2.RefreshTokenRequest(refresh_token=first.refresh_token))
        )
        await eventually(
            lambda: any(
                unpack(e, identity_pb2.RefreshTokenReused).user_id == user.id for e in events
            )
        )
    # The legitimate holder's newer token died with the family.
    successor = await rpc_error(
        stub.RefreshToken(identity_pb2.RefreshTokenRequest(refresh_token=second.refresh_token))
    )

    assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
    assert claims_of(second)["acc"] == claims_of(first)["acc"]
    assert replay.code() == successor.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_revoked_or_unknown_refresh_token_is_refused(stub, tokens: ContextTokens) -> None:
    user = await create_user(stub, tokens, uuid.uuid4())
    issued = await sign_in(stub, user.email)

    await stub.RevokeToken(identity_pb2.RevokeTokenRequest(refresh_token=issued.refresh_token))
    await stub.RevokeToken(identity_pb2.RevokeTokenRequest(refresh_token="never-issued"))
    revoked = await rpc_error(
        stub.RefreshToken(identity_pb2.RefreshTokenRequest(refresh_token=issued.refresh_token))
    )
    unknown = await rpc_error(
        stub.RefreshToken(identity_pb2.RefreshTokenRequest(refresh_token="never-issued"))
    )

    assert revoked.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_refresh_tokens_are_stored_hashed(
    stub, tokens: ContextTokens, database_url: str
) -> None:
    user = await create_user(stub, tokens, uuid.uuid4())
    issued = await sign_in(stub, user.email)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT token_hash FROM identity.refresh_tokens WHERE user_id = %s", [user.id]
        ).fetchall()
    assert rows and all(issued.refresh_token.encode() not in bytes(r[0]) for r in rows)


async def test_five_failures_lock_the_email_even_against_the_right_password(
    stub, tokens: ContextTokens, database_url: str, nats_client: NatsClient
) -> None:
    email = unique_email("locked")
    await create_user(stub, tokens, uuid.uuid4(), email=email)
    async with published(nats_client, "canopy.identity.login.locked") as events:
        failures = [
            await rpc_error(sign_in(stub, email, password=f"wrong password {i}")) for i in range(5)
        ]
        await eventually(
            lambda: any(unpack(e, identity_pb2.LoginLocked).email == email for e in events)
        )
    locked = await rpc_error(sign_in(stub, email))
    unknown = unique_email("nobody")
    for i in range(5):
        await rpc_error(sign_in(stub, unknown, password=f"wrong password {i}"))
    unknown_locked = await rpc_error(sign_in(stub, unknown))

    assert all(f.details() == "invalid email or password" for f in failures)
    assert locked.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "too many failed sign-ins" in locked.details()
    assert "too many failed sign-ins" in unknown_locked.details()  # reveals nothing either way
    (lock,) = [
        unpack(e, identity_pb2.LoginLocked)
        for e in events
        if unpack(e, identity_pb2.LoginLocked).email == email
    ]
    assert lock.locked_seconds == 60

    # Once the lock has passed, the right password works and clears the count.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE identity.login_throttle SET locked_until = now() - interval '1 second'"
            " WHERE email = lower(%s)",
            [email],
        )
    assert (await sign_in(stub, email)).access_token
    with psycopg.connect(database_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM identity.login_throttle WHERE email = lower(%s)", [email]
        ).fetchone()
    assert left == (0,)


async def test_a_rotated_key_signs_new_tokens_and_old_tokens_still_verify(
    stub, tokens: ContextTokens
) -> None:
    user = await create_user(stub, tokens, uuid.uuid4())
    before = await sign_in(stub, user.email)
    operator = tokens.metadata(
        service_context("canopyctl", account_id=None, permissions=["identity.signing_keys:rotate"])
    )

    rotated = await stub.RotateSigningKey(identity_pb2.RotateSigningKeyRequest(), metadata=operator)
    after = await sign_in(stub, user.email)
    jwks = await stub.GetJwks(identity_pb2.GetJwksRequest())
    refused = await rpc_error(
        stub.RotateSigningKey(
            identity_pb2.RotateSigningKeyRequest(), metadata=metadata(tokens, uuid.uuid4())
        )
    )

    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    new_kid = jwt.get_unverified_header(after.access_token)["kid"]
    assert (rotated.kid, rotated.retired_kid) == (new_kid, old_kid) and new_kid != old_kid
    keys = {k.kid: k for k in jwks.keys}
    assert {old_kid, new_kid} <= set(keys)
    for token, kid in ((before, old_kid), (after, new_kid)):
        jwk = keys[kid]
        key = jwt.PyJWK({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x}, "EdDSA")
        jwt.decode(token.access_token, key, algorithms=["EdDSA"], audience="canopy")
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_sign_in_is_refused_once_every_membership_is_deactivated(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="admin")
    user = await create_user(stub, tokens, account, password=PASSWORD)
    issued = await sign_in(stub, user.email)
    await stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=metadata(tokens, account)
    )

    refused = await rpc_error(sign_in(stub, user.email))
    refresh = await rpc_error(
        stub.RefreshToken(identity_pb2.RefreshTokenRequest(refresh_token=issued.refresh_token))
    )

    assert refused.code() == refresh.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "deactivated" in refused.details()
