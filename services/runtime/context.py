"""Who is calling, in which account and tenants, with what permissions; and its signed token.

The gateway resolves a caller once and forwards the result to services as a short-lived
context token (EdDSA JWT) in the `x-canopy-context` metadata. Services verify it and never
trust anything else a client says about itself.
"""

import base64
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.runtime.errors import Forbidden, Unauthenticated
from services.runtime.ids import new_id

METADATA_KEY = "x-canopy-context"
CORRELATION_KEY = "x-correlation-id"
TOKEN_LIFETIME_SECONDS = 60
ISSUER = "canopy"


@dataclass(frozen=True)
class CallContext:
    principal_id: str
    # "user", "service", "sftp_login", "operator" or "system".
    principal_kind: str
    account_id: uuid.UUID | None
    permissions: frozenset[str] = frozenset()
    # None means every tenant of the account.
    tenant_ids: frozenset[uuid.UUID] | None = None
    correlation_id: str = field(default_factory=lambda: str(new_id()))
    source_address: str = ""

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"permission {permission} is required")

    def require_account(self) -> uuid.UUID:
        if self.account_id is None:
            raise Forbidden("this call needs an account")
        return self.account_id

    def for_account(self, account_id: uuid.UUID) -> "CallContext":
        return replace(self, account_id=account_id)


current_context: ContextVar[CallContext | None] = ContextVar("current_context", default=None)


def service_context(
    service: str,
    *,
    account_id: uuid.UUID | None,
    permissions: Iterable[str],
    correlation_id: str | None = None,
) -> CallContext:
    """A context for a service acting on its own behalf (event handlers, relays, the CLI)."""
    return CallContext(
        principal_id=f"service:{service}",
        principal_kind="service",
        account_id=account_id,
        permissions=frozenset(permissions),
        correlation_id=correlation_id or str(new_id()),
    )


def generate_context_key() -> str:
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


class ContextTokens:
    """Signs and verifies context tokens with one Ed25519 key shared by the platform."""

    def __init__(self, key_b64: str) -> None:
        if not key_b64:
            raise ValueError("CANOPY_CONTEXT_KEY is not set")
        self._private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key_b64))
        self._public: Ed25519PublicKey = self._private.public_key()

    def sign(self, ctx: CallContext, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": ctx.principal_id,
            "knd": ctx.principal_kind,
            "acc": str(ctx.account_id) if ctx.account_id else None,
            "prm": sorted(ctx.permissions),
            "ten": None if ctx.tenant_ids is None else sorted(str(t) for t in ctx.tenant_ids),
            "cid": ctx.correlation_id,
            "src": ctx.source_address,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self._private, algorithm="EdDSA")

    def verify(self, token: str) -> CallContext:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["EdDSA"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"context token rejected: {error}") from error
        tenants = claims.get("ten")
        return CallContext(
            principal_id=claims["sub"],
            principal_kind=claims.get("knd", ""),
            account_id=uuid.UUID(claims["acc"]) if claims.get("acc") else None,
            permissions=frozenset(claims.get("prm") or ()),
            tenant_ids=None if tenants is None else frozenset(uuid.UUID(t) for t in tenants),
            correlation_id=claims.get("cid") or str(new_id()),
            source_address=claims.get("src") or "",
        )

    def metadata(self, ctx: CallContext) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying `ctx` to another service."""
        return ((METADATA_KEY, self.sign(ctx)), (CORRELATION_KEY, ctx.correlation_id))
