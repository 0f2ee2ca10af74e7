"""Grants on the account, a tenant-group subtree or one tenant; revoking; effective permissions."""

import uuid

import grpc

from canopy.identity.v1 import identity_pb2
from services.identity.tests.fakes import FakeTenantDirectory
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    grant,
    metadata,
    resolve,
    rpc_error,
)
from services.runtime.context import ContextTokens


async def test_a_group_grant_shows_the_groups_tenants_only(
    stub, tokens: ContextTokens, tenant_tree: FakeTenantDirectory
) -> None:
    account = uuid.uuid4()
    north = [tenant_tree.add_tenant(account) for _ in range(2)]
    group = tenant_tree.add_group(account, *north)
    elsewhere = tenant_tree.add_tenant(account)
    user = await create_user(stub, tokens, account)

    made = await grant(stub, tokens, account, user.id, "staff", "tenant_group", str(group))
    result = await resolve(stub, tokens, user.id, str(account))

    assert (made.scope, made.scope_id, made.principal_kind) == ("tenant_group", str(group), "user")
    assert result.member and not result.all_tenants
    assert set(result.tenant_ids) == {str(t) for t in north}
    assert str(elsewhere) not in result.tenant_ids
    assert set(result.permissions) == PRESET_ROLES["staff"]
    assert not result.account_permissions


async def test_permissions_of_a_tenant_grant_hold_on_that_tenant_only(
    stub, tokens: ContextTokens, tenant_tree: FakeTenantDirectory
) -> None:
    account = uuid.uuid4()
    shop, other = tenant_tree.add_tenant(account), tenant_tree.add_tenant(account)
    group = tenant_tree.add_group(account, shop, other)
    user = await create_user(stub, tokens, account, role="customer")
    await grant(stub, tokens, account, user.id, "auditor", "tenant", str(shop))
    await grant(stub, tokens, account, user.id, "staff", "tenant_group", str(group))

    result = await resolve(stub, tokens, user.id, str(account))
    per_tenant = {p.tenant_id: set(p.permissions) for p in result.tenant_permissions}

    # The account-wide customer grant shows every tenant; the narrower ones add per tenant.
    assert result.all_tenants and not result.tenant_ids
    assert set(result.account_permissions) == PRESET_ROLES["customer"]
    assert per_tenant[str(shop)] == (
        PRESET_ROLES["customer"] | PRESET_ROLES["staff"] | PRESET_ROLES["auditor"]
    )
    assert per_tenant[str(other)] == PRESET_ROLES["customer"] | PRESET_ROLES["staff"]
    assert "audit.events:read" in result.permissions  # the union, documented as such
    assert "audit.events:read" not in per_tenant[str(other)]


async def test_a_scope_outside_the_account_is_refused(
    stub, tokens: ContextTokens, tenant_tree: FakeTenantDirectory
) -> None:
    account, other = uuid.uuid4(), uuid.uuid4()
    foreign_tenant = tenant_tree.add_tenant(other)
    foreign_group = tenant_tree.add_group(other, foreign_tenant)
    user = await create_user(stub, tokens, account)

    group = await rpc_error(
        grant(stub, tokens, account, user.id, "staff", "tenant_group", str(foreign_group))
    )
    tenant = await rpc_error(
        grant(stub, tokens, account, user.id, "staff", "tenant", str(foreign_tenant))
    )
    bad_type = await rpc_error(grant(stub, tokens, account, user.id, "staff", "region", ""))
    missing_id = await rpc_error(grant(stub, tokens, account, user.id, "staff", "tenant", ""))
    account_with_id = await rpc_error(
        grant(stub, tokens, account, user.id, "staff", "account", str(uuid.uuid4()))
    )

    for error in (group, tenant, bad_type, missing_id, account_with_id):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    result = await resolve(stub, tokens, user.id, str(account))
    assert not result.permissions


async def test_a_revoked_grant_stops_counting_and_is_listed_no_more(
    stub, tokens: ContextTokens
) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    made = await grant(stub, tokens, account, user.id, "auditor")
    meta = metadata(tokens, account)

    revoked = await stub.RevokeGrant(
        identity_pb2.RevokeGrantRequest(grant_id=made.id), metadata=meta
    )
    again = await rpc_error(
        stub.RevokeGrant(identity_pb2.RevokeGrantRequest(grant_id=made.id), metadata=meta)
    )
    listed = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(user_id=user.id), metadata=meta
    )
    result = await resolve(stub, tokens, user.id, str(account))

    assert revoked.id == made.id and again.code() == grpc.StatusCode.NOT_FOUND
    assert [g.role for g in listed.grants] == ["staff"]
    assert set(result.permissions) == PRESET_ROLES["staff"]


async def test_grants_are_listed_page_by_page_and_by_principal(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    ann = await create_user(stub, tokens, account, role="staff")
    bob = await create_user(stub, tokens, account, role="auditor")
    await grant(stub, tokens, account, bob.id, "customer")
    meta = metadata(tokens, account)

    first = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(page_size=2), metadata=meta
    )
    rest = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(page_size=2, page_token=first.next_page_token),
        metadata=meta,
    )
    bobs = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(user_id=bob.id), metadata=meta
    )

    assert len(first.grants) == 2 and len(rest.grants) == 1 and not rest.next_page_token
    assert {g.user_id for g in [*first.grants, *rest.grants]} == {ann.id, bob.id}
    assert sorted(g.role for g in bobs.grants) == ["auditor", "customer"]


async def test_effective_permissions_show_what_and_where_and_why(
    stub, tokens: ContextTokens, tenant_tree: FakeTenantDirectory
) -> None:
    account = uuid.uuid4()
    tenant = tenant_tree.add_tenant(account)
    user = await create_user(stub, tokens, account)
    await grant(stub, tokens, account, user.id, "staff", "tenant", str(tenant))

    effective = await stub.GetEffectivePermissions(
        identity_pb2.GetEffectivePermissionsRequest(user_id=user.id),
        metadata=metadata(tokens, account),
    )

    assert effective.member and not effective.all_tenants
    assert list(effective.tenant_ids) == [str(tenant)]
    assert set(effective.permissions) == PRESET_ROLES["staff"]
    assert [(g.role, g.scope, g.scope_id) for g in effective.grants] == [
        ("staff", "tenant", str(tenant))
    ]


async def test_another_accounts_grants_cannot_be_revoked_listed_or_inspected(
    stub, tokens: ContextTokens
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    user = await create_user(stub, tokens, first, role="staff")
    listed = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(user_id=user.id), metadata=metadata(tokens, first)
    )
    foreign = metadata(tokens, second)

    revoke = await rpc_error(
        stub.RevokeGrant(
            identity_pb2.RevokeGrantRequest(grant_id=listed.grants[0].id), metadata=foreign
        )
    )
    seen = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(user_id=user.id), metadata=foreign
    )
    inspect = await rpc_error(
        stub.GetEffectivePermissions(
            identity_pb2.GetEffectivePermissionsRequest(user_id=user.id), metadata=foreign
        )
    )

    assert revoke.code() == inspect.code() == grpc.StatusCode.NOT_FOUND
    assert not seen.grants
    assert set((await resolve(stub, tokens, user.id)).permissions) == PRESET_ROLES["staff"]


async def test_the_last_admin_grant_cannot_be_revoked(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    admin = await create_user(stub, tokens, account, role="admin")
    meta = metadata(tokens, account)
    (only,) = (
        await stub.ListRoleGrants(
            identity_pb2.ListRoleGrantsRequest(user_id=admin.id), metadata=meta
        )
    ).grants

    refused = await rpc_error(
        stub.RevokeGrant(identity_pb2.RevokeGrantRequest(grant_id=only.id), metadata=meta)
    )
    second = await create_user(stub, tokens, account, role="admin")
    await stub.RevokeGrant(identity_pb2.RevokeGrantRequest(grant_id=only.id), metadata=meta)

    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "last admin" in refused.details()
    assert (await resolve(stub, tokens, second.id)).member
    assert not (await resolve(stub, tokens, admin.id)).permissions


async def test_reading_grants_needs_the_grants_read_permission(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    error = await rpc_error(
        stub.ListRoleGrants(
            identity_pb2.ListRoleGrantsRequest(user_id=user.id),
            metadata=metadata(tokens, account, "identity.users:read"),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
