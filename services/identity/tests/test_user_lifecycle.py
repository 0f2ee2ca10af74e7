"""Members are deactivated, restored, changed and deleted (with erasure), never the last admin."""

import uuid

import grpc
import psycopg
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from services.identity.tests.helpers import (
    PASSWORD,
    create_user,
    eventually,
    metadata,
    published,
    resolve,
    rpc_error,
    sign_in,
    unique_email,
)
from services.runtime.context import ContextTokens
from services.runtime.events import unpack


async def test_a_deactivated_member_holds_nothing_until_restored(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="admin")
    user = await create_user(stub, tokens, account, role="staff")
    meta = metadata(tokens, account)
    before = await resolve(stub, tokens, user.id, str(account))

    deactivated = await stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=meta
    )
    during = await resolve(stub, tokens, user.id, str(account))
    restored = await stub.RestoreUser(
        identity_pb2.RestoreUserRequest(user_id=user.id), metadata=meta
    )
    after = await resolve(stub, tokens, user.id, str(account))

    assert (deactivated.status, restored.status) == ("deactivated", "active")
    assert not during.member and not during.permissions
    assert during.authz_version > before.authz_version
    assert after.member and set(after.permissions) == set(before.permissions)
    assert (await sign_in(stub, user.email)).access_token


async def test_deactivation_in_one_account_leaves_the_others_alone(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await create_user(stub, tokens, first, role="admin")
    user = await create_user(stub, tokens, first, role="staff")
    await create_user(stub, tokens, second, email=user.email, role="auditor")

    await stub.DeactivateUser(
        identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=metadata(tokens, first)
    )
    token = await sign_in(stub, user.email)
    refused = await rpc_error(sign_in(stub, user.email, account=str(first)))

    assert token.account_id == str(second)  # now its only active account
    assert (await resolve(stub, tokens, user.id, str(second))).member
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_last_admin_cannot_be_deactivated_or_deleted(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    admin = await create_user(stub, tokens, account, role="admin")
    meta = metadata(tokens, account)

    deactivate = await rpc_error(
        stub.DeactivateUser(identity_pb2.DeactivateUserRequest(user_id=admin.id), metadata=meta)
    )
    delete = await rpc_error(
        stub.DeleteUser(identity_pb2.DeleteUserRequest(user_id=admin.id), metadata=meta)
    )

    assert deactivate.code() == delete.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await resolve(stub, tokens, admin.id)).member


async def test_deleting_a_member_of_one_account_erases_its_personal_data(
    stub, tokens: ContextTokens, database_url: str, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="admin")
    email = unique_email("gone")
    user = await create_user(stub, tokens, account, email=email, role="staff")
    meta = metadata(tokens, account)

    async with published(nats_client, "canopy.identity.user.deleted") as events:
        deleted = await stub.DeleteUser(
            identity_pb2.DeleteUserRequest(user_id=user.id), metadata=meta
        )
        await eventually(
            lambda: any(unpack(e, identity_pb2.UserChanged).user_id == user.id for e in events)
        )
    listed = await stub.ListUsers(identity_pb2.ListUsersRequest(), metadata=meta)
    refused = await rpc_error(sign_in(stub, email))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT email, display_name, password_hash, status FROM identity.users WHERE id = %s",
            [user.id],
        ).fetchone()
        grants = conn.execute(
            "SELECT count(*) FROM identity.role_grants WHERE principal_id = %s", [user.id]
        ).fetchone()
    again = await create_user(stub, tokens, account, email=email)

    assert deleted.erased and user.id not in [u.id for u in listed.users]
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert row[0].endswith("@erased.invalid") and email.split("@")[0] not in row[0]
    assert row[1:] == ("", "!", "erased") and grants == (0,)
    assert again.id != user.id  # the address is free again, for a new person
    (event,) = [e for e in events if unpack(e, identity_pb2.UserChanged).user_id == user.id]
    assert email.split("@")[0].encode() not in event.SerializeToString()


async def test_deleting_a_member_of_several_accounts_only_removes_it_here(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first, role="staff")
    await create_user(stub, tokens, second, email=user.email, role="staff")

    deleted = await stub.DeleteUser(
        identity_pb2.DeleteUserRequest(user_id=user.id), metadata=metadata(tokens, first)
    )

    assert not deleted.erased
    assert not (await resolve(stub, tokens, user.id, str(first))).member
    assert (await sign_in(stub, user.email)).account_id == str(second)


async def test_a_members_email_and_name_change_and_a_taken_email_is_refused(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account)
    other = await create_user(stub, tokens, account)
    meta = metadata(tokens, account)
    new_email = unique_email("renamed")

    changed = await stub.UpdateUser(
        identity_pb2.UpdateUserRequest(user_id=user.id, email=new_email, display_name="Ann  Lee"),
        metadata=meta,
    )
    taken = await rpc_error(
        stub.UpdateUser(
            identity_pb2.UpdateUserRequest(user_id=other.id, email=new_email), metadata=meta
        )
    )

    assert (changed.email, changed.display_name) == (
        new_email.split("@")[0] + "@example.com",
        "Ann Lee",
    )
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await sign_in(stub, new_email, PASSWORD)).access_token


async def test_a_shared_users_email_is_not_an_account_admins_to_change(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first)
    await create_user(stub, tokens, second, email=user.email)

    error = await rpc_error(
        stub.UpdateUser(
            identity_pb2.UpdateUserRequest(user_id=user.id, email=unique_email("hijack")),
            metadata=metadata(tokens, first),
        )
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await sign_in(stub, user.email, account=str(second))).access_token


async def test_another_account_cannot_touch_a_member(stub, tokens: ContextTokens) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first, role="staff")
    foreign = metadata(tokens, second)

    calls = [
        stub.DeactivateUser(identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=foreign),
        stub.RestoreUser(identity_pb2.RestoreUserRequest(user_id=user.id), metadata=foreign),
        stub.DeleteUser(identity_pb2.DeleteUserRequest(user_id=user.id), metadata=foreign),
        stub.UpdateUser(
            identity_pb2.UpdateUserRequest(user_id=user.id, display_name="x"), metadata=foreign
        ),
    ]
    for call in calls:
        assert (await rpc_error(call)).code() == grpc.StatusCode.NOT_FOUND
    assert (await resolve(stub, tokens, user.id)).member
