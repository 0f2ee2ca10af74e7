"""In-process stand-ins for identity, tenancy and audit, built on the real generated servicers and
served by the real runtime server (so its interceptor verifies the tokens the gateway signs).

Only the gateway's own tests use these; end-to-end tests run the real services.
"""

import asyncio
import base64
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from canopy.audit.v1 import audit_pb2, audit_pb2_grpc
from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from devstack.ports import free_port
from services.runtime.context import CallContext, ContextTokens
from services.runtime.errors import NotFound, Unauthenticated
from services.runtime.grpc_server import context_of_call, start_grpc_server


@dataclass
class SigningKey:
    """An identity signing key: signs user tokens, shows up in the JWKS."""

    kid: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwk(self) -> identity_pb2.Jwk:
        raw = self.private.public_key().public_bytes_raw()
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return identity_pb2.Jwk(kty="OKP", crv="Ed25519", x=x, kid=self.kid, alg="EdDSA", use="sig")

    def token(
        self,
        subject: str,
        *,
        expires_in: int = 300,
        issuer: str = "canopy-identity",
        audience: str = "canopy",
        kid: str | None = None,
        account: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "sub": subject,
            "iss": issuer,
            "aud": audience,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + expires_in,
        }
        if account is not None:
            claims["acc"] = account
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})


@dataclass
class Grant:
    permissions: frozenset[str]
    tenant_ids: frozenset[str] | None = None  # None: all tenants
    # Tenant-scoped grants: tenant -> permissions there (then `permissions` are account-wide).
    per_tenant: dict[str, frozenset[str]] | None = None


@dataclass
class ApiKey:
    key_id: str
    owner_id: str
    account_id: str
    permissions: frozenset[str] = frozenset()
    revoked: bool = False


class IdentityDouble(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, key: SigningKey) -> None:
        self.keys = [key]
        self.members: dict[str, dict[str, Grant]] = {}
        self.api_keys: dict[str, ApiKey] = {}
        self.versions: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.resolve_contexts: list[CallContext] = []
        self.me_contexts: list[CallContext] = []
        self.failing: set[str] = set()  # methods that fail as if identity's database were down
        self.version_delay = 0.0  # seconds between reading a version and answering

    def add_member(self, user_id: str, account_id: str, grant: Grant) -> None:
        """Grant (or change) a member's permissions; bumps the account's authz_version."""
        self.members.setdefault(user_id, {})[account_id] = grant
        self.versions[account_id] += 1

    def add_api_key(
        self, owner_id: str, account_id: str, permissions: frozenset[str] = frozenset()
    ) -> str:
        secret = f"cpy_{uuid.uuid4().hex}"
        self.api_keys[secret] = ApiKey(
            str(uuid.uuid4()), owner_id, account_id, frozenset(permissions)
        )
        self.versions[account_id] += 1
        return secret

    def revoke_api_key(self, secret: str) -> None:
        key = self.api_keys[secret]
        key.revoked = True
        self.versions[key.account_id] += 1

    async def GetAuthzVersion(self, request: Any, context: Any) -> identity_pb2.AuthzVersion:
        self.calls["GetAuthzVersion"] += 1
        if "GetAuthzVersion" in self.failing:
            raise RuntimeError("database down")
        answer = identity_pb2.AuthzVersion(
            account_id=request.account_id, version=self.versions[request.account_id]
        )
        if self.version_delay:
            await asyncio.sleep(self.version_delay)  # read, then slow to answer
        return answer

    async def AuthenticateApiKey(self, request: Any, context: Any) -> identity_pb2.ApiKeyPrincipal:
        self.calls["AuthenticateApiKey"] += 1
        key = self.api_keys.get(request.key)
        if key is None or key.revoked:
            raise Unauthenticated("unknown, expired or revoked API key")
        return identity_pb2.ApiKeyPrincipal(
            api_key_id=key.key_id,
            principal_id=key.owner_id,
            principal_kind="service_account",
            account_id=key.account_id,
            permissions=sorted(key.permissions),
        )

    async def GetMe(self, request: Any, context: Any) -> identity_pb2.Me:
        self.calls["GetMe"] += 1
        ctx = context_of_call()
        self.me_contexts.append(ctx)
        return identity_pb2.Me()

    async def IssueToken(self, request: Any, context: Any) -> identity_pb2.Token:
        self.calls["IssueToken"] += 1
        if request.password != "correct horse":
            raise Unauthenticated("invalid email or password")
        token = self.keys[-1].token(str(uuid.uuid5(uuid.NAMESPACE_DNS, request.email)))
        return identity_pb2.Token(access_token=token, token_type="Bearer", expires_in=300)

    async def GetJwks(self, request: Any, context: Any) -> identity_pb2.Jwks:
        self.calls["GetJwks"] += 1
        return identity_pb2.Jwks(keys=[key.jwk() for key in self.keys])

    async def Resolve(self, request: Any, context: Any) -> identity_pb2.Resolution:
        self.calls["Resolve"] += 1
        self.resolve_contexts.append(context_of_call())
        accounts = self.members.get(request.principal_id, {})
        account_id = request.account_id
        if not account_id:
            if len(accounts) != 1:
                return identity_pb2.Resolution(member=False, membership_count=len(accounts))
            account_id = next(iter(accounts))
        grant = accounts.get(account_id)
        if grant is None:
            return identity_pb2.Resolution(
                account_id=account_id, member=False, membership_count=len(accounts)
            )
        per_tenant = grant.per_tenant or {}
        every = set(grant.permissions).union(*per_tenant.values())
        return identity_pb2.Resolution(
            account_id=account_id,
            member=True,
            permissions=sorted(every),
            all_tenants=grant.tenant_ids is None,
            tenant_ids=sorted(grant.tenant_ids or ()),
            membership_count=len(accounts),
            authz_version=self.versions[account_id],
            account_permissions=sorted(grant.permissions) if per_tenant else [],
            tenant_permissions=[
                identity_pb2.TenantPermissions(
                    tenant_id=tenant, permissions=sorted(held | grant.permissions)
                )
                for tenant, held in per_tenant.items()
            ],
        )


class TenancyDouble(tenancy_pb2_grpc.TenancyServiceServicer):
    def __init__(self) -> None:
        self.accounts: dict[str, tenancy_pb2.Account] = {}
        self.tenants: dict[str, str] = {}  # tenant -> account
        self.calls: Counter[str] = Counter()
        self.contexts: list[CallContext] = []
        self.requests: list[Any] = []

    def add_account(
        self, slug: str, status: int = tenancy_pb2.ACCOUNT_STATUS_ACTIVE
    ) -> tenancy_pb2.Account:
        account = tenancy_pb2.Account(
            id=str(uuid.uuid4()), name=slug.title(), slug=slug, tier="standard", status=status
        )
        self.accounts[account.id] = account
        return account

    async def GetAccount(self, request: Any, context: Any) -> tenancy_pb2.Account:
        self.calls["GetAccount"] += 1
        for account in self.accounts.values():
            if request.account in (account.id, account.slug):
                return account
        raise NotFound("account not found")

    async def ListTenants(self, request: Any, context: Any) -> tenancy_pb2.ListTenantsResponse:
        self._record("ListTenants", request)
        ctx = context_of_call()
        tenant = tenancy_pb2.Tenant(id=str(uuid.uuid4()), account_id=str(ctx.account_id), name="HQ")
        return tenancy_pb2.ListTenantsResponse(tenants=[tenant])

    def add_tenant(self, account_id: str) -> str:
        tenant_id = str(uuid.uuid4())
        self.tenants[tenant_id] = account_id
        return tenant_id

    async def GetTenant(self, request: Any, context: Any) -> tenancy_pb2.Tenant:
        self._record("GetTenant", request)
        ctx = context_of_call()
        if self.tenants.get(request.tenant_id) != str(ctx.account_id):
            raise NotFound(f"tenant {request.tenant_id} not found")
        return tenancy_pb2.Tenant(id=request.tenant_id, account_id=str(ctx.account_id), name="T")

    async def CreateTenant(self, request: Any, context: Any) -> tenancy_pb2.Tenant:
        self._record("CreateTenant", request)
        ctx = context_of_call()
        return tenancy_pb2.Tenant(
            id=str(uuid.uuid4()), account_id=str(ctx.account_id), name=request.name
        )

    def _record(self, method: str, request: Any) -> None:
        self.calls[method] += 1
        self.contexts.append(context_of_call())
        self.requests.append(request)


class AuditDouble(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self) -> None:
        self.contexts: list[CallContext] = []
        self.requests: list[Any] = []

    async def ListEvents(self, request: Any, context: Any) -> audit_pb2.ListEventsResponse:
        self.contexts.append(context_of_call())
        self.requests.append(request)
        event = audit_pb2.AuditEvent(id=str(uuid.uuid4()), sequence=7, type=request.type)
        return audit_pb2.ListEventsResponse(events=[event], next_page_token="next")

    async def VerifyChain(self, request: Any, context: Any) -> audit_pb2.VerifyChainResponse:
        self.contexts.append(context_of_call())
        self.requests.append(request)
        return audit_pb2.VerifyChainResponse(ok=True, events_checked=3)


@dataclass
class Peers:
    identity: IdentityDouble
    tenancy: TenancyDouble
    audit: AuditDouble
    addresses: dict[str, str]


@asynccontextmanager
async def serving_peers(tokens: ContextTokens, key: SigningKey) -> AsyncIterator[Peers]:
    peers = Peers(IdentityDouble(key), TenancyDouble(), AuditDouble(), {})
    servers: list[grpc.aio.Server] = []
    wiring = [
        (
            "identity",
            identity_pb2,
            identity_pb2_grpc.add_IdentityServiceServicer_to_server,
            peers.identity,
        ),
        (
            "tenancy",
            tenancy_pb2,
            tenancy_pb2_grpc.add_TenancyServiceServicer_to_server,
            peers.tenancy,
        ),
        ("audit", audit_pb2, audit_pb2_grpc.add_AuditServiceServicer_to_server, peers.audit),
    ]
    try:
        for name, module, add, servicer in wiring:
            address = f"127.0.0.1:{free_port()}"
            servers.append(
                await start_grpc_server(
                    address=address,
                    tokens=tokens,
                    pb2_modules=[module],
                    registrations=[(add, servicer)],
                )
            )
            peers.addresses[name] = address
        yield peers
    finally:
        for server in servers:
            await server.stop(grace=0)
