"""Preset roles: seeded when tenancy announces an account, listed and granted per account."""

import uuid

import grpc
from nats.aio.client import Client as NatsClient

from canopy.identity.v1 import identity_pb2
from canopy.tenancy.v1 import tenancy_pb2
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    eventually,
    metadata,
    rpc_error,
)
from services.runtime.context import ContextTokens, service_context
from services.runtime.events import new_event


async def publish_account_created(nats_client: NatsClient, account: uuid.UUID) -> None:
    event = new_event(
        "canopy.tenancy.account.created",
        tenancy_pb2.AccountCreated(
            account_id=str(account), name="Dealer Group", slug=f"dg-{account.hex[:8]}", tier="pro"
        ),
        account_id=account,
        ctx=service_context("tenancy", account_id=account, permissions=()),
    )
    js = nats_client.jetstream()
    await js.publish(event.type, event.SerializeToString(), headers={"Nats-Msg-Id": event.id})


async def test_an_account_created_event_seeds_the_four_preset_roles(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    await publish_account_created(nats_client, account)

    async def roles() -> list[identity_pb2.Role]:
        listed = await stub.ListRoles(
            identity_pb2.ListRolesRequest(), metadata=metadata(tokens, account)
        )
        return list(listed.roles)

    async def all_four() -> bool:
        return len(await roles()) == 4

    await eventually(all_four)
    seeded = {r.name: r for r in await roles()}
    assert set(seeded) == {"admin", "staff", "auditor", "customer"}
    assert all(r.preset for r in seeded.values())
    for name, role in seeded.items():
        assert set(role.permissions) == PRESET_ROLES[name]


async def test_seeding_twice_changes_nothing(
    stub, tokens: ContextTokens, nats_client: NatsClient
) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="customer")  # seeds on demand first
    before = await stub.ListRoles(
        identity_pb2.ListRolesRequest(), metadata=metadata(tokens, account)
    )
    await publish_account_created(nats_client, account)
    other = uuid.uuid4()
    await publish_account_created(nats_client, other)

    async def other_seeded() -> bool:
        listed = await stub.ListRoles(
            identity_pb2.ListRolesRequest(), metadata=metadata(tokens, other)
        )
        return len(listed.roles) == 4

    await eventually(other_seeded)
    after = await stub.ListRoles(
        identity_pb2.ListRolesRequest(), metadata=metadata(tokens, account)
    )
    assert [(r.id, r.name) for r in after.roles] == [(r.id, r.name) for r in before.roles]
    assert len(after.roles) == 4


async def test_a_role_is_granted_to_a_member_once(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account)
    meta = metadata(tokens, account)

    first = await stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=user.id, role="staff"), metadata=meta
    )
    again = await stub.GrantRole(
        identity_pb2.GrantRoleRequest(user_id=user.id, role="staff"), metadata=meta
    )

    assert first.id == again.id
    assert (first.user_id, first.role, first.scope) == (user.id, "staff", "account")


async def test_granting_needs_a_member_a_known_role_and_a_user_id(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account)
    meta = metadata(tokens, account)

    stranger = await rpc_error(
        stub.GrantRole(
            identity_pb2.GrantRoleRequest(user_id=str(uuid.uuid4()), role="staff"), metadata=meta
        )
    )
    unknown = await rpc_error(
        stub.GrantRole(identity_pb2.GrantRoleRequest(user_id=user.id, role="wizard"), metadata=meta)
    )
    malformed = await rpc_error(
        stub.GrantRole(identity_pb2.GrantRoleRequest(user_id="42", role="staff"), metadata=meta)
    )

    assert stranger.code() == grpc.StatusCode.NOT_FOUND
    assert unknown.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
