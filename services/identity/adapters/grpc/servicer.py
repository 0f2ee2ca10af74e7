"""IdentityService over gRPC: each method turns the request into a use case call and back."""

from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from services.identity.domain.resolution import Resolution
from services.identity.domain.roles import Role, RoleGrant
from services.identity.domain.tokens import jwk_of
from services.identity.domain.users import User
from services.identity.service_layer import resolution, roles, tokens, users
from services.identity.service_layer.passwords import Passwords
from services.identity.service_layer.signing import TokenSigner
from services.identity.service_layer.unit_of_work import IdentityStore
from services.runtime.grpc_server import context_of_call


def _timestamp(value: datetime) -> Timestamp:
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
    )


def _role(role: Role) -> identity_pb2.Role:
    return identity_pb2.Role(
        id=str(role.id), name=role.name, permissions=sorted(role.permissions), preset=role.preset
    )


def _grant(grant: RoleGrant) -> identity_pb2.RoleGrant:
    return identity_pb2.RoleGrant(
        id=str(grant.id),
        user_id=str(grant.user_id),
        role=grant.role,
        scope=grant.scope,
        created_at=_timestamp(grant.created_at),
    )


def _resolution(result: Resolution) -> identity_pb2.Resolution:
    return identity_pb2.Resolution(
        account_id=str(result.account_id) if result.account_id else "",
        member=result.member,
        permissions=sorted(result.permissions),
        all_tenants=result.all_tenants,
        tenant_ids=sorted(str(t) for t in result.tenant_ids),
        membership_count=result.membership_count,
    )


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, *, store: IdentityStore, passwords: Passwords, signer: TokenSigner) -> None:
        self.store = store
        self.passwords = passwords
        self.signer = signer

    async def IssueToken(
        self, request: identity_pb2.IssueTokenRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.Token:
        issued = await tokens.issue_token(
            store=self.store,
            passwords=self.passwords,
            signer=self.signer,
            email=request.email,
            password=request.password,
            source_address=context.peer() or "",
        )
        return identity_pb2.Token(
            access_token=issued.access_token,
            token_type=issued.token_type,
            expires_in=issued.expires_in,
        )

    async def GetJwks(
        self, request: identity_pb2.GetJwksRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.Jwks:
        keys = await tokens.public_keys(store=self.store, signer=self.signer)
        return identity_pb2.Jwks(
            keys=[identity_pb2.Jwk(**jwk_of(key.kid, key.public_key)) for key in keys]
        )

    async def CreateUser(
        self, request: identity_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.User:
        user = await users.create_user(
            store=self.store,
            passwords=self.passwords,
            ctx=context_of_call(),
            email=request.email,
            password=request.password,
            display_name=request.display_name,
            role=request.role,
        )
        return _user(user)

    async def ListUsers(
        self, request: identity_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.ListUsersResponse:
        page, next_token = await users.list_users(
            store=self.store,
            ctx=context_of_call(),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return identity_pb2.ListUsersResponse(
            users=[_user(u) for u in page], next_page_token=next_token
        )

    async def ListRoles(
        self, request: identity_pb2.ListRolesRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.ListRolesResponse:
        found = await roles.list_roles(store=self.store, ctx=context_of_call())
        return identity_pb2.ListRolesResponse(roles=[_role(r) for r in found])

    async def GrantRole(
        self, request: identity_pb2.GrantRoleRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.RoleGrant:
        grant = await roles.grant_role(
            store=self.store, ctx=context_of_call(), user_id=request.user_id, role=request.role
        )
        return _grant(grant)

    async def Resolve(
        self, request: identity_pb2.ResolveRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.Resolution:
        result = await resolution.resolve(
            store=self.store,
            ctx=context_of_call(),
            principal_id=request.principal_id,
            account_id=request.account_id,
        )
        return _resolution(result)
