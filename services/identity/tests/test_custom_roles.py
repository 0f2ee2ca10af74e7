"""Custom roles: created or cloned from a preset, edited, compared, deleted; the catalogue."""

import uuid

import grpc

from canopy.identity.v1 import identity_pb2
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    grant,
    metadata,
    resolve,
    rpc_error,
)
from services.runtime.context import ContextTokens


async def test_a_clone_of_a_preset_is_edited_and_diffed_against_it(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    clone = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="Lead-Auditor", clone_from="auditor"), metadata=meta
    )
    wanted = (PRESET_ROLES["auditor"] - {"audit.events:verify"}) | {"canonical.records:read"}
    edited = await stub.UpdateRole(
        identity_pb2.UpdateRoleRequest(
            role_id=clone.id, permissions=sorted(wanted), replace_permissions=True
        ),
        metadata=meta,
    )
    diff = await stub.DiffRole(identity_pb2.DiffRoleRequest(role_id=clone.id), metadata=meta)
    against_staff = await stub.DiffRole(
        identity_pb2.DiffRoleRequest(role_id=clone.id, against="staff"), metadata=meta
    )

    assert (clone.name, clone.based_on, clone.preset) == ("lead-auditor", "auditor", False)
    assert set(clone.permissions) == PRESET_ROLES["auditor"]
    assert set(edited.permissions) == wanted
    assert (diff.against, list(diff.added), list(diff.removed)) == (
        "auditor",
        ["canonical.records:read"],
        ["audit.events:verify"],
    )
    assert set(against_staff.added) == wanted - PRESET_ROLES["staff"]


async def test_a_custom_role_grants_exactly_its_permissions_and_edits_take_effect(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    role = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(
            name="loader", permissions=["ingestion.files:read", "canonical.records:read"]
        ),
        metadata=meta,
    )
    user = await create_user(stub, tokens, account)
    await grant(stub, tokens, account, user.id, "loader")
    before = await resolve(stub, tokens, user.id)
    await stub.UpdateRole(
        identity_pb2.UpdateRoleRequest(role_id=role.id, permissions=["ingestion.files:read"]),
        metadata=meta,
    )
    after = await resolve(stub, tokens, user.id)

    assert set(before.permissions) == {"ingestion.files:read", "canonical.records:read"}
    assert set(after.permissions) == {"ingestion.files:read"}
    assert after.authz_version > before.authz_version


async def test_unknown_service_only_or_malformed_permissions_are_refused(
    stub, tokens: ContextTokens
) -> None:
    meta = metadata(tokens, uuid.uuid4())

    async def create(name: str, *permissions: str) -> grpc.aio.AioRpcError:
        return await rpc_error(
            stub.CreateRole(
                identity_pb2.CreateRoleRequest(name=name, permissions=list(permissions)),
                metadata=meta,
            )
        )

    unknown = await create("typo", "canonical.record:read")
    service_only = await create("sneaky", "identity.principals:resolve")
    preset_name = await create("admin", "canonical.records:read")
    bad_name = await create("has space", "canonical.records:read")
    empty = await create("empty")

    for error in (unknown, service_only, preset_name, bad_name, empty):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "canonical.record:read" in unknown.details()
    assert "service-only" in service_only.details()


async def test_presets_are_read_only_and_names_are_unique(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="ops", clone_from="staff"), metadata=meta
    )
    roles = await stub.ListRoles(identity_pb2.ListRolesRequest(), metadata=meta)
    staff = next(r for r in roles.roles if r.name == "staff")

    duplicate = await rpc_error(
        stub.CreateRole(
            identity_pb2.CreateRoleRequest(name="OPS", clone_from="staff"), metadata=meta
        )
    )
    edit_preset = await rpc_error(
        stub.UpdateRole(
            identity_pb2.UpdateRoleRequest(role_id=staff.id, permissions=["audit.events:read"]),
            metadata=meta,
        )
    )
    delete_preset = await rpc_error(
        stub.DeleteRole(identity_pb2.DeleteRoleRequest(role_id=staff.id), metadata=meta)
    )

    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert edit_preset.code() == delete_preset.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert [r.name for r in roles.roles] == ["admin", "auditor", "customer", "staff", "ops"]


async def test_a_granted_role_cannot_be_deleted_until_revoked(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    role = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="temp", clone_from="customer"), metadata=meta
    )
    user = await create_user(stub, tokens, account)
    made = await grant(stub, tokens, account, user.id, "temp")

    refused = await rpc_error(
        stub.DeleteRole(identity_pb2.DeleteRoleRequest(role_id=role.id), metadata=meta)
    )
    await stub.RevokeGrant(identity_pb2.RevokeGrantRequest(grant_id=made.id), metadata=meta)
    await stub.DeleteRole(identity_pb2.DeleteRoleRequest(role_id=role.id), metadata=meta)
    roles = await stub.ListRoles(identity_pb2.ListRolesRequest(), metadata=meta)
    recreated = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="temp", clone_from="staff"), metadata=meta
    )

    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "granted" in refused.details()
    assert "temp" not in [r.name for r in roles.roles[:4]] and len(roles.roles) == 4
    assert recreated.id != role.id


async def test_the_catalogue_lists_every_grantable_permission_with_its_rpcs(
    stub, tokens: ContextTokens
) -> None:
    listed = await stub.ListPermissions(
        identity_pb2.ListPermissionsRequest(), metadata=metadata(tokens, uuid.uuid4())
    )
    by_name = {p.name: p for p in listed.permissions}

    assert set(by_name) == PRESET_ROLES["admin"]
    assert "identity.principals:resolve" not in by_name
    assert "IdentityService.ListUsers" in by_name["identity.users:read"].methods
    assert by_name["canonical.records:read"].context == "canonical"


async def test_another_account_cannot_see_edit_or_delete_a_custom_role(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    role = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="mine", clone_from="staff"),
        metadata=metadata(tokens, first),
    )
    foreign = metadata(tokens, second)
    user = await create_user(stub, tokens, second)

    edit = await rpc_error(
        stub.UpdateRole(identity_pb2.UpdateRoleRequest(role_id=role.id, name="x"), metadata=foreign)
    )
    delete = await rpc_error(
        stub.DeleteRole(identity_pb2.DeleteRoleRequest(role_id=role.id), metadata=foreign)
    )
    diff = await rpc_error(
        stub.DiffRole(identity_pb2.DiffRoleRequest(role_id=role.id), metadata=foreign)
    )
    use = await rpc_error(grant(stub, tokens, second, user.id, "mine"))

    assert edit.code() == delete.code() == diff.code() == grpc.StatusCode.NOT_FOUND
    assert use.code() == grpc.StatusCode.INVALID_ARGUMENT
