"""Resolve: what a principal may do in an account, as the gateway asks it."""

import uuid

import grpc

from canopy.identity.v1 import identity_pb2
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    metadata,
    rpc_error,
    service_metadata,
)
from services.runtime.context import ContextTokens


async def resolve(stub, tokens: ContextTokens, principal_id: str, account_id: str = ""):  # type: ignore[no-untyped-def]
    return await stub.Resolve(
        identity_pb2.ResolveRequest(principal_id=principal_id, account_id=account_id),
        metadata=service_metadata(tokens),
    )


async def test_a_user_of_one_account_resolves_to_it_by_default(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")

    result = await resolve(stub, tokens, user.id)

    assert result.account_id == str(account)
    assert result.member and result.all_tenants and not result.tenant_ids
    assert set(result.permissions) == PRESET_ROLES["staff"]
    assert result.membership_count == 1


async def test_a_user_of_two_accounts_must_name_one(stub, tokens: ContextTokens) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first, role="customer")
    await create_user(stub, tokens, second, email=user.email, role="auditor")

    default = await resolve(stub, tokens, user.id)
    named = await resolve(stub, tokens, user.id, str(second))

    assert (default.account_id, default.member, default.membership_count) == ("", False, 2)
    assert not default.permissions
    assert named.member and named.account_id == str(second)
    assert set(named.permissions) == PRESET_ROLES["auditor"]


async def test_roles_add_up(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    await stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=user.id, role="auditor"),
        metadata=metadata(tokens, account),
    )

    result = await resolve(stub, tokens, user.id, str(account))

    assert set(result.permissions) == PRESET_ROLES["staff"] | PRESET_ROLES["auditor"]


async def test_a_non_member_gets_nothing(stub, tokens: ContextTokens) -> None:
    user = await create_user(stub, tokens, uuid.uuid4(), role="admin")
    elsewhere = uuid.uuid4()

    result = await resolve(stub, tokens, user.id, str(elsewhere))
    nobody = await resolve(stub, tokens, str(uuid.uuid4()))

    assert (result.account_id, result.member, list(result.permissions)) == (
        str(elsewhere),
        False,
        [],
    )
    assert not result.all_tenants
    assert (nobody.member, nobody.membership_count) == (False, 0)


async def test_resolve_is_for_services_only(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="admin")

    error = await rpc_error(
        stub.Resolve(
            identity_pb2.ResolveRequest(principal_id=user.id), metadata=metadata(tokens, account)
        )
    )
    malformed = await rpc_error(
        stub.Resolve(
            identity_pb2.ResolveRequest(principal_id="someone"), metadata=service_metadata(tokens)
        )
    )

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
