"""Creating users, signing in, and verifying the issued tokens with the published keys."""

import uuid

import grpc
import jwt
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from services.identity.tests.helpers import (
    PASSWORD,
    create_user,
    eventually,
    metadata,
    published,
    rpc_error,
    unique_email,
)
from services.runtime.context import ContextTokens
from services.runtime.events import unpack


async def test_a_created_user_signs_in_and_the_token_verifies_against_the_jwks(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    email = unique_email("ann")
    user = await create_user(stub, tokens, account, email=email)
    assert user.email == email.split("@")[0] + "@example.com"

    token = await stub.IssueToken(
        identity_pb2.IssueTokenRequest(email=email.upper(), password=PASSWORD)
    )
    jwks = await stub.GetJwks(identity_pb2.GetJwksRequest())

    assert token.token_type == "Bearer" and token.expires_in == 3600
    kid = jwt.get_unverified_header(token.access_token)["kid"]
    (jwk,) = [k for k in jwks.keys if k.kid == kid]
    assert (jwk.kty, jwk.crv, jwk.alg, jwk.use) == ("OKP", "Ed25519", "EdDSA", "sig")
    key = jwt.PyJWK({"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "kid": jwk.kid, "alg": jwk.alg})
    claims = jwt.decode(
        token.access_token, key, algorithms=["EdDSA"], audience="canopy", issuer="canopy-identity"
    )
    assert claims["sub"] == user.id
    assert claims["exp"] - claims["iat"] == 3600
    # The user's only account is the token's; roles and permissions are never inside.
    assert claims["acc"] == str(account) == token.account_id
    assert not {"prm", "permissions", "roles"} & set(claims)
    assert token.refresh_token and token.refresh_expires_in > 0


async def test_wrong_password_and_unknown_email_fail_alike(stub, tokens: ContextTokens) -> None:
    email = unique_email()
    await create_user(stub, tokens, uuid.uuid4(), email=email)

    wrong = await rpc_error(
        stub.IssueToken(identity_pb2.IssueTokenRequest(email=email, password="not the password"))
    )
    unknown = await rpc_error(
        stub.IssueToken(identity_pb2.IssueTokenRequest(email=unique_email(), password=PASSWORD))
    )

    assert wrong.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.details() == unknown.details() == "invalid email or password"


async def test_sign_in_events_name_the_email_and_reason_but_never_the_password(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    email = unique_email()
    user = await create_user(stub, tokens, uuid.uuid4(), email=email)
    async with published(nats_client, "canopy.identity.login.>") as events:
        await rpc_error(
            stub.IssueToken(identity_pb2.IssueTokenRequest(email=email, password="guess-guess-1"))
        )
        await stub.IssueToken(identity_pb2.IssueTokenRequest(email=email, password=PASSWORD))

        def mine() -> list:
            found = []
            for event in events:
                if event.type == "canopy.identity.login.failed":
                    payload = unpack(event, identity_pb2.LoginFailed)
                    if payload.email == email:
                        found.append((event, payload))
                elif unpack(event, identity_pb2.LoginSucceeded).user_id == user.id:
                    found.append((event, None))
            return found

        await eventually(lambda: len(mine()) == 2)
    (failed, failure), (succeeded, _) = mine()
    assert failure.reason == "wrong_password"
    assert failed.account_id == succeeded.account_id == ""
    assert succeeded.actor.principal_id == user.id
    assert b"guess-guess-1" not in failed.SerializeToString()


async def test_a_new_user_needs_a_password_of_twelve_characters(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    short = await rpc_error(create_user(stub, tokens, account, password="elevenchars"))
    missing = await rpc_error(create_user(stub, tokens, account, password=""))

    assert short.code() == missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least 12 characters" in short.details()
    assert "password is required" in missing.details()


async def test_a_malformed_email_is_refused(stub, tokens: ContextTokens) -> None:
    error = await rpc_error(create_user(stub, tokens, uuid.uuid4(), email="not-an-email"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "email" in error.details()


async def test_an_existing_email_reuses_the_user_and_keeps_its_password(
    stub, tokens: ContextTokens
) -> None:
    email = unique_email()
    first, second = uuid.uuid4(), uuid.uuid4()
    original = await create_user(stub, tokens, first, email=email)

    again = await create_user(stub, tokens, first, email=email, password="")
    elsewhere = await create_user(
        stub, tokens, second, email=email.lower(), password="another password 2"
    )

    assert again.id == elsewhere.id == original.id
    members = await stub.ListUsers(
        identity_pb2.ListUsersRequest(), metadata=metadata(tokens, first)
    )
    assert [u.id for u in members.users] == [original.id]
    await stub.IssueToken(identity_pb2.IssueTokenRequest(email=email, password=PASSWORD))
    refused = await rpc_error(
        stub.IssueToken(identity_pb2.IssueTokenRequest(email=email, password="another password 2"))
    )
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_role_given_at_creation_is_granted_and_an_unknown_one_creates_nothing(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="Admin")
    email = unique_email()
    unknown = await rpc_error(create_user(stub, tokens, account, email=email, role="wizard"))

    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "wizard" in unknown.details()
    members = await stub.ListUsers(
        identity_pb2.ListUsersRequest(), metadata=metadata(tokens, account)
    )
    assert [u.id for u in members.users] == [user.id]
    again = await stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=user.id, role="admin"),
        metadata=metadata(tokens, account),
    )
    assert (again.role, again.scope) == ("admin", "account")


async def test_creating_a_user_publishes_user_membership_and_grant_events(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    async with published(nats_client, "canopy.identity.>") as events:
        user = await create_user(stub, tokens, account, role="staff")

        def mine() -> dict:
            return {e.type: e for e in events if e.account_id == str(account)}

        await eventually(lambda: len(mine()) == 4)
    by_type = mine()
    assert set(by_type) == {
        "canopy.identity.user.created",
        "canopy.identity.membership.created",
        "canopy.identity.roles.seeded",
        "canopy.identity.grant.changed",
    }
    created = unpack(by_type["canopy.identity.user.created"], identity_pb2.UserCreated)
    grant = unpack(by_type["canopy.identity.grant.changed"], identity_pb2.GrantChanged)
    assert created.user_id == grant.user_id == user.id
    assert (grant.role, grant.scope, grant.change) == ("staff", "account", "granted")
    assert all(PASSWORD.encode() not in e.SerializeToString() for e in events)


async def test_users_are_listed_page_by_page(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    created = [await create_user(stub, tokens, account) for _ in range(3)]
    meta = metadata(tokens, account)

    first = await stub.ListUsers(identity_pb2.ListUsersRequest(page_size=2), metadata=meta)
    rest = await stub.ListUsers(
        identity_pb2.ListUsersRequest(page_size=2, page_token=first.next_page_token), metadata=meta
    )

    assert [u.id for u in [*first.users, *rest.users]] == sorted(u.id for u in created)
    assert first.next_page_token and not rest.next_page_token
