"""IdentityService over gRPC: each method turns the request into a use case call and back."""

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from services.identity.domain import domains as domain_rules
from services.identity.domain.api_keys import ApiKey, ServiceAccount
from services.identity.domain.domains import Domain, DomainRule
from services.identity.domain.resolution import Resolution
from services.identity.domain.roles import Role, RoleGrant
from services.identity.domain.tokens import IssuedToken, jwk_of
from services.identity.domain.users import Membership, User
from services.identity.service_layer import (
    api_keys,
    domains,
    leases,
    resolution,
    roles,
    tokens,
    users,
)
from services.identity.service_layer.deps import Deps
from services.runtime.grpc_server import context_of_call


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _user(user: User) -> identity_pb2.User:
    return identity_pb2.User(
        id=str(user.id),
        email=user.email,
        display_name=user.display_name,
        created_at=_timestamp(user.created_at),
        updated_at=_timestamp(user.updated_at),
        status=user.membership.value if user.membership else "",
    )


def _membership(membership: Membership) -> identity_pb2.Membership:
    return identity_pb2.Membership(
        account_id=str(membership.account_id),
        status=membership.status.value,
        created_at=_timestamp(membership.created_at),
    )


def _role(role: Role) -> identity_pb2.Role:
    return identity_pb2.Role(
        id=str(role.id),
        name=role.name,
        permissions=sorted(role.permissions),
        preset=role.preset,
        based_on=role.based_on,
        description=role.description,
    )


def _grant(grant: RoleGrant) -> identity_pb2.RoleGrant:
    return identity_pb2.RoleGrant(
        id=str(grant.id),
        user_id=str(grant.principal_id),
        role=grant.role,
        scope=grant.scope.type.value,
        scope_id=str(grant.scope.id) if grant.scope.id else "",
        principal_kind=grant.principal_kind.value,
        domain_rule_id=str(grant.domain_rule_id) if grant.domain_rule_id else "",
        created_at=_timestamp(grant.created_at),
    )


def _tenant_permissions(result: Resolution) -> list[identity_pb2.TenantPermissions]:
    return [
        identity_pb2.TenantPermissions(tenant_id=str(tenant), permissions=sorted(perms))
        for tenant, perms in sorted(result.tenant_permissions.items())
    ]


def _resolution(result: Resolution) -> identity_pb2.Resolution:
    return identity_pb2.Resolution(
        account_id=str(result.account_id) if result.account_id else "",
        member=result.member,
        permissions=sorted(result.permissions),
        all_tenants=result.all_tenants,
        tenant_ids=sorted(str(t) for t in result.tenant_ids),
        membership_count=result.membership_count,
        authz_version=result.authz_version,
        account_permissions=sorted(result.account_permissions),
        tenant_permissions=_tenant_permissions(result),
        principal_kind=result.principal_kind,
    )


def _token(issued: IssuedToken) -> identity_pb2.Token:
    return identity_pb2.Token(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in,
        account_id=str(issued.account_id) if issued.account_id else "",
    )


def _service_account(found: ServiceAccount) -> identity_pb2.ServiceAccount:
    return identity_pb2.ServiceAccount(
        id=str(found.id),
        name=found.name,
        description=found.description,
        status="active" if found.active else "deactivated",
        created_at=_timestamp(found.created_at),
        updated_at=_timestamp(found.updated_at),
    )


def _api_key(key: ApiKey) -> identity_pb2.ApiKey:
    return identity_pb2.ApiKey(
        id=str(key.id),
        name=key.name,
        prefix=f"cpy_{key.prefix}",
        owner_id=str(key.owner_id),
        owner_kind=key.owner_kind.value,
        permissions=sorted(key.permissions),
        expires_at=_timestamp(key.expires_at),
        last_used_at=_timestamp(key.last_used_at),
        revoked_at=_timestamp(key.revoked_at),
        created_at=_timestamp(key.created_at),
    )


def _created_key(created: api_keys.CreatedKey) -> identity_pb2.CreatedApiKey:
    return identity_pb2.CreatedApiKey(api_key=_api_key(created.api_key), key=created.key)


def _domain(domain: Domain) -> identity_pb2.Domain:
    return identity_pb2.Domain(
        id=str(domain.id),
        domain=domain.domain,
        status="verified" if domain.verified else "pending",
        txt_record_name=domain_rules.txt_record_name(domain.domain),
        txt_record_value=domain_rules.txt_record_value(domain.verification_token),
        verified_at=_timestamp(domain.verified_at),
        created_at=_timestamp(domain.created_at),
    )


def _rule(rule: DomainRule) -> identity_pb2.DomainRule:
    return identity_pb2.DomainRule(
        id=str(rule.id),
        domain_id=str(rule.domain_id),
        domain=rule.domain,
        role=rule.role,
        scope_type=rule.scope.type.value,
        scope_id=str(rule.scope.id) if rule.scope.id else "",
        created_at=_timestamp(rule.created_at),
    )


Context = grpc.aio.ServicerContext


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.store = deps.store

    # Sign-in and tokens.

    async def IssueToken(
        self, request: identity_pb2.IssueTokenRequest, context: Context
    ) -> identity_pb2.Token:
        issued = await tokens.issue_token(
            self.deps,
            email=request.email,
            password=request.password,
            account=request.account,
            source_address=context.peer() or "",
        )
        return _token(issued)

    async def RefreshToken(
        self, request: identity_pb2.RefreshTokenRequest, context: Context
    ) -> identity_pb2.Token:
        issued = await tokens.refresh_token(
            self.deps, refresh_token=request.refresh_token, source_address=context.peer() or ""
        )
        return _token(issued)

    async def RevokeToken(
        self, request: identity_pb2.RevokeTokenRequest, context: Context
    ) -> identity_pb2.RevokeTokenResponse:
        await tokens.revoke_token(self.deps, refresh_token=request.refresh_token)
        return identity_pb2.RevokeTokenResponse()

    async def SwitchAccount(
        self, request: identity_pb2.SwitchAccountRequest, context: Context
    ) -> identity_pb2.Token:
        issued = await tokens.switch_account(
            self.deps, ctx=context_of_call(), account_id=request.account_id
        )
        return _token(issued)

    async def GetMe(self, request: identity_pb2.GetMeRequest, context: Context) -> identity_pb2.Me:
        ctx = context_of_call()
        user, memberships = await users.me(self.deps, ctx=ctx)
        return identity_pb2.Me(
            user=_user(user),
            memberships=[_membership(m) for m in memberships],
            active_account_id=str(ctx.account_id) if ctx.account_id else "",
        )

    async def GetJwks(
        self, request: identity_pb2.GetJwksRequest, context: Context
    ) -> identity_pb2.Jwks:
        keys = await tokens.public_keys(store=self.store, signer=self.deps.signer)
        return identity_pb2.Jwks(
            keys=[identity_pb2.Jwk(**jwk_of(key.kid, key.public_key)) for key in keys]
        )

    async def RotateSigningKey(
        self, request: identity_pb2.RotateSigningKeyRequest, context: Context
    ) -> identity_pb2.SigningKey:
        kid, retired = await tokens.rotate_signing_key(self.deps, ctx=context_of_call())
        return identity_pb2.SigningKey(kid=kid, retired_kid=retired)

    # Users.

    async def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: Context
    ) -> identity_pb2.User:
        user = await users.create_user(
            self.deps,
            ctx=context_of_call(),
            email=request.email,
            password=request.password,
            display_name=request.display_name,
            role=request.role,
        )
        return _user(user)

    async def ListUsers(
        self, request: identity_pb2.ListUsersRequest, context: Context
    ) -> identity_pb2.ListUsersResponse:
        page, next_token = await users.list_users(
            self.deps,
            ctx=context_of_call(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return identity_pb2.ListUsersResponse(
            users=[_user(u) for u in page], next_page_token=next_token
        )

    async def UpdateUser(
        self, request: identity_pb2.UpdateUserRequest, context: Context
    ) -> identity_pb2.User:
        user = await users.update_user(
            self.deps,
            ctx=context_of_call(),
            user_id=request.user_id,
            email=request.email,
            display_name=request.display_name,
        )
        return _user(user)

    async def DeactivateUser(
        self, request: identity_pb2.DeactivateUserRequest, context: Context
    ) -> identity_pb2.User:
        user = await users.set_active(
            self.deps, ctx=context_of_call(), user_id=request.user_id, active=False
        )
        return _user(user)

    async def RestoreUser(
        self, request: identity_pb2.RestoreUserRequest, context: Context
    ) -> identity_pb2.User:
        user = await users.set_active(
            self.deps, ctx=context_of_call(), user_id=request.user_id, active=True
        )
        return _user(user)

    async def DeleteUser(
        self, request: identity_pb2.DeleteUserRequest, context: Context
    ) -> identity_pb2.DeleteUserResponse:
        erased = await users.delete_user(self.deps, ctx=context_of_call(), user_id=request.user_id)
        return identity_pb2.DeleteUserResponse(user_id=request.user_id.strip(), erased=erased)

    async def GetEffectivePermissions(
        self, request: identity_pb2.GetEffectivePermissionsRequest, context: Context
    ) -> identity_pb2.EffectivePermissions:
        result, grants = await resolution.effective_permissions(
            self.deps, ctx=context_of_call(), user_id=request.user_id
        )
        return identity_pb2.EffectivePermissions(
            principal_id=request.user_id.strip(),
            account_id=str(result.account_id) if result.account_id else "",
            member=result.member,
            permissions=sorted(result.permissions),
            all_tenants=result.all_tenants,
            tenant_ids=sorted(str(t) for t in result.tenant_ids),
            account_permissions=sorted(result.account_permissions),
            tenant_permissions=_tenant_permissions(result),
            grants=[_grant(g) for g in grants],
        )

    # Roles and grants.

    async def ListRoles(
        self, request: identity_pb2.ListRolesRequest, context: Context
    ) -> identity_pb2.ListRolesResponse:
        found = await roles.list_roles(store=self.store, ctx=context_of_call())
        return identity_pb2.ListRolesResponse(roles=[_role(r) for r in found])

    async def CreateRole(
        self, request: identity_pb2.CreateRoleRequest, context: Context
    ) -> identity_pb2.Role:
        role = await roles.create_role(
            self.deps,
            ctx=context_of_call(),
            name=request.name,
            clone_from=request.clone_from,
            permissions=list(request.permissions),
            description=request.description,
        )
        return _role(role)

    async def UpdateRole(
        self, request: identity_pb2.UpdateRoleRequest, context: Context
    ) -> identity_pb2.Role:
        role = await roles.update_role(
            self.deps,
            ctx=context_of_call(),
            role_id=request.role_id,
            name=request.name,
            permissions=list(request.permissions),
            replace_permissions=request.replace_permissions,
            description=request.description if request.description else None,
        )
        return _role(role)

    async def DeleteRole(
        self, request: identity_pb2.DeleteRoleRequest, context: Context
    ) -> identity_pb2.DeleteRoleResponse:
        await roles.delete_role(self.deps, ctx=context_of_call(), role_id=request.role_id)
        return identity_pb2.DeleteRoleResponse()

    async def DiffRole(
        self, request: identity_pb2.DiffRoleRequest, context: Context
    ) -> identity_pb2.RoleDiff:
        diff = await roles.diff_role(
            self.deps, ctx=context_of_call(), role_id=request.role_id, against=request.against
        )
        return identity_pb2.RoleDiff(
            role_id=request.role_id.strip(),
            against=diff.against,
            added=list(diff.added),
            removed=list(diff.removed),
        )

    async def ListPermissions(
        self, request: identity_pb2.ListPermissionsRequest, context: Context
    ) -> identity_pb2.ListPermissionsResponse:
        catalogue = roles.list_permissions(self.deps)
        return identity_pb2.ListPermissionsResponse(
            permissions=[
                identity_pb2.Permission(
                    name=name, context=name.split(".", 1)[0], methods=list(methods)
                )
                for name, methods in catalogue.methods.items()
            ]
        )

    async def GrantRole(
        self, request: identity_pb2.GrantRoleRequest, context: Context
    ) -> identity_pb2.RoleGrant:
        grant = await roles.grant_role(
            self.deps,
            ctx=context_of_call(),
            user_id=request.user_id,
            role=request.role,
            scope_type=request.scope_type,
            scope_id=request.scope_id,
        )
        return _grant(grant)

    async def RevokeGrant(
        self, request: identity_pb2.RevokeGrantRequest, context: Context
    ) -> identity_pb2.RoleGrant:
        grant = await roles.revoke_grant(
            self.deps, ctx=context_of_call(), grant_id=request.grant_id
        )
        return _grant(grant)

    async def ListRoleGrants(
        self, request: identity_pb2.ListRoleGrantsRequest, context: Context
    ) -> identity_pb2.ListRoleGrantsResponse:
        grants, next_token = await roles.list_grants(
            store=self.store,
            ctx=context_of_call(),
            user_id=request.user_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return identity_pb2.ListRoleGrantsResponse(
            grants=[_grant(g) for g in grants], next_page_token=next_token
        )

    # Service accounts and API keys.

    async def CreateServiceAccount(
        self, request: identity_pb2.CreateServiceAccountRequest, context: Context
    ) -> identity_pb2.ServiceAccount:
        created = await api_keys.create_service_account(
            self.deps,
            ctx=context_of_call(),
            name=request.name,
            description=request.description,
            role=request.role,
        )
        return _service_account(created)

    async def ListServiceAccounts(
        self, request: identity_pb2.ListServiceAccountsRequest, context: Context
    ) -> identity_pb2.ListServiceAccountsResponse:
        found, next_token = await api_keys.list_service_accounts(
            self.deps,
            ctx=context_of_call(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return identity_pb2.ListServiceAccountsResponse(
            service_accounts=[_service_account(s) for s in found], next_page_token=next_token
        )

    async def DeleteServiceAccount(
        self, request: identity_pb2.DeleteServiceAccountRequest, context: Context
    ) -> identity_pb2.ServiceAccount:
        removed = await api_keys.delete_service_account(
            self.deps, ctx=context_of_call(), service_account_id=request.service_account_id
        )
        return _service_account(removed)

    async def CreateApiKey(
        self, request: identity_pb2.CreateApiKeyRequest, context: Context
    ) -> identity_pb2.CreatedApiKey:
        created = await api_keys.create_api_key(
            self.deps,
            ctx=context_of_call(),
            service_account_id=request.service_account_id,
            name=request.name,
            permissions=list(request.permissions),
            expires_in_days=request.expires_in_days,
        )
        return _created_key(created)

    async def ListApiKeys(
        self, request: identity_pb2.ListApiKeysRequest, context: Context
    ) -> identity_pb2.ListApiKeysResponse:
        keys = await api_keys.list_api_keys(
            self.deps, ctx=context_of_call(), owner_id=request.service_account_id
        )
        return identity_pb2.ListApiKeysResponse(api_keys=[_api_key(k) for k in keys])

    async def RevokeApiKey(
        self, request: identity_pb2.RevokeApiKeyRequest, context: Context
    ) -> identity_pb2.ApiKey:
        key = await api_keys.revoke_api_key(
            self.deps, ctx=context_of_call(), api_key_id=request.api_key_id
        )
        return _api_key(key)

    async def CreateMyApiKey(
        self, request: identity_pb2.CreateMyApiKeyRequest, context: Context
    ) -> identity_pb2.CreatedApiKey:
        created = await api_keys.create_my_api_key(
            self.deps,
            ctx=context_of_call(),
            name=request.name,
            permissions=list(request.permissions),
            expires_in_days=request.expires_in_days,
        )
        return _created_key(created)

    async def ListMyApiKeys(
        self, request: identity_pb2.ListMyApiKeysRequest, context: Context
    ) -> identity_pb2.ListApiKeysResponse:
        keys = await api_keys.list_my_api_keys(self.deps, ctx=context_of_call())
        return identity_pb2.ListApiKeysResponse(api_keys=[_api_key(k) for k in keys])

    async def RevokeMyApiKey(
        self, request: identity_pb2.RevokeMyApiKeyRequest, context: Context
    ) -> identity_pb2.ApiKey:
        key = await api_keys.revoke_api_key(
            self.deps, ctx=context_of_call(), api_key_id=request.api_key_id, own_only=True
        )
        return _api_key(key)

    async def AuthenticateApiKey(
        self, request: identity_pb2.AuthenticateApiKeyRequest, context: Context
    ) -> identity_pb2.ApiKeyPrincipal:
        key = await api_keys.authenticate(self.deps, key=request.key)
        return identity_pb2.ApiKeyPrincipal(
            api_key_id=str(key.id),
            principal_id=str(key.owner_id),
            principal_kind=key.owner_kind.value,
            account_id=str(key.account_id),
            permissions=sorted(key.permissions),
        )

    # Authorization answers for the gateway.

    async def Resolve(
        self, request: identity_pb2.ResolveRequest, context: Context
    ) -> identity_pb2.Resolution:
        result = await resolution.resolve(
            store=self.store,
            tenants=self.deps.tenants,
            ctx=context_of_call(),
            principal_id=request.principal_id,
            account_id=request.account_id,
        )
        return _resolution(result)

    async def GetAuthzVersion(
        self, request: identity_pb2.GetAuthzVersionRequest, context: Context
    ) -> identity_pb2.AuthzVersion:
        account_id, version = await resolution.authz_version(
            store=self.store, account_id=request.account_id
        )
        return identity_pb2.AuthzVersion(account_id=str(account_id), version=version)

    async def RenewAuthzLease(
        self, request: identity_pb2.RenewAuthzLeaseRequest, context: Context
    ) -> identity_pb2.AuthzLease:
        seconds = await leases.renew_lease(
            self.store,
            lease_id=request.lease_id,
            fence_subject=request.fence_subject,
            acquire=request.acquire,
            seconds=self.deps.authz_lease_seconds,
        )
        return identity_pb2.AuthzLease(lease_id=request.lease_id, seconds=seconds)

    async def ReleaseAuthzLease(
        self, request: identity_pb2.ReleaseAuthzLeaseRequest, context: Context
    ) -> identity_pb2.ReleaseAuthzLeaseResponse:
        await leases.release_lease(self.store, lease_id=request.lease_id)
        return identity_pb2.ReleaseAuthzLeaseResponse()

    # Domains and domain rules.

    async def CreateDomain(
        self, request: identity_pb2.CreateDomainRequest, context: Context
    ) -> identity_pb2.Domain:
        return _domain(
            await domains.create_domain(self.deps, ctx=context_of_call(), domain=request.domain)
        )

    async def ListDomains(
        self, request: identity_pb2.ListDomainsRequest, context: Context
    ) -> identity_pb2.ListDomainsResponse:
        found = await domains.list_domains(self.deps, ctx=context_of_call())
        return identity_pb2.ListDomainsResponse(domains=[_domain(d) for d in found])

    async def VerifyDomain(
        self, request: identity_pb2.VerifyDomainRequest, context: Context
    ) -> identity_pb2.Domain:
        verified = await domains.verify_domain(
            self.deps,
            ctx=context_of_call(),
            domain_id=request.domain_id,
            operator_confirmed=request.operator_confirmed,
        )
        return _domain(verified)

    async def DeleteDomain(
        self, request: identity_pb2.DeleteDomainRequest, context: Context
    ) -> identity_pb2.Domain:
        removed = await domains.delete_domain(
            self.deps, ctx=context_of_call(), domain_id=request.domain_id
        )
        return _domain(removed)

    async def CreateDomainRule(
        self, request: identity_pb2.CreateDomainRuleRequest, context: Context
    ) -> identity_pb2.DomainRule:
        rule = await domains.create_rule(
            self.deps,
            ctx=context_of_call(),
            domain_id=request.domain_id,
            role=request.role,
            scope_type=request.scope_type,
            scope_id=request.scope_id,
        )
        return _rule(rule)

    async def ListDomainRules(
        self, request: identity_pb2.ListDomainRulesRequest, context: Context
    ) -> identity_pb2.ListDomainRulesResponse:
        found = await domains.list_rules(self.deps, ctx=context_of_call())
        return identity_pb2.ListDomainRulesResponse(rules=[_rule(r) for r in found])

    async def DeleteDomainRule(
        self, request: identity_pb2.DeleteDomainRuleRequest, context: Context
    ) -> identity_pb2.DomainRule:
        removed = await domains.delete_rule(
            self.deps, ctx=context_of_call(), rule_id=request.rule_id
        )
        return _rule(removed)
