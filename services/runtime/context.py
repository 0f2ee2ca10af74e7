"""Who is calling, in which account and tenants, with what permissions; and its signed token.

The gateway resolves a caller once and forwards the result to services as a short-lived
context token (EdDSA JWT) in the `x-canopy-context` metadata. Services verify it and never
trust anything else a client says about itself.
"""

import base64
import time
import uuid
from collections.abc import Callable, Iterable
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
    """Signs and verifies context tokens with one Ed25519 key shared by the platform.

    A token carries who, where and what, not the request: the correlation id travels beside it
    (CORRELATION_KEY). So one token serves a caller's requests for half its lifetime, and a
    service verifies each token once; both caches are bounded and keyed by the whole token.
    """

    def __init__(
        self, key_b64: str, *, cache_entries: int = 4096, clock: Callable[[], float] = time.time
    ) -> None:
        if not key_b64:
            raise ValueError("CANOPY_CONTEXT_KEY is not set")
        self._private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(key_b64))
        self._public: Ed25519PublicKey = self._private.public_key()
        self._cache_entries = cache_entries
        self._clock = clock
        self._signed: dict[tuple[object, ...], tuple[str, float]] = {}  # claims -> token, until
        self._verified: dict[str, tuple[CallContext, float]] = {}  # token -> context, expiry

    def sign(self, ctx: CallContext, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "sub": ctx.principal_id,
            "knd": ctx.principal_kind,
            "acc": str(ctx.account_id) if ctx.account_id else None,
            "prm": sorted(ctx.permissions),
            "ten": None if ctx.tenant_ids is None else sorted(str(t) for t in ctx.tenant_ids),
            "src": ctx.source_address,
            "iat": now,
            "exp": now + lifetime,
        }
        return jwt.encode(claims, self._private, algorithm="EdDSA")

    def verify(self, token: str, correlation_id: str = "") -> CallContext:
        """The context `token` carries, with `correlation_id` (a new one when empty)."""
        known = self._verified.get(token)
        if known is None or known[1] <= self._clock():
            known = self._decode(token)
            _remember(self._verified, token, known, self._cache_entries)
        return replace(known[0], correlation_id=correlation_id or str(new_id()))

    def metadata(self, ctx: CallContext) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying `ctx` to another service."""
        key = (
            ctx.principal_id,
            ctx.principal_kind,
            ctx.account_id,
            ctx.permissions,
            ctx.tenant_ids,
            ctx.source_address,
        )
        now = self._clock()
        signed = self._signed.get(key)
        if signed is None or signed[1] <= now:
            signed = (self.sign(ctx), now + TOKEN_LIFETIME_SECONDS / 2)
            _remember(self._signed, key, signed, self._cache_entries)
        return ((METADATA_KEY, signed[0]), (CORRELATION_KEY, ctx.correlation_id))

    def _decode(self, token: str) -> tuple[CallContext, float]:
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["EdDSA"],
                issuer=ISSUER,
                # Times are checked below, on this object's clock (which the caches use too).
                options={
                    "require": ["exp", "iat", "sub", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"context token rejected: {error}") from error
        if float(claims["exp"]) <= self._clock():
            raise Unauthenticated("context token rejected: it has expired")
        tenants = claims.get("ten")
        ctx = CallContext(
            principal_id=claims["sub"],
            principal_kind=claims.get("knd", ""),
            account_id=uuid.UUID(claims["acc"]) if claims.get("acc") else None,
            permissions=frozenset(claims.get("prm") or ()),
            tenant_ids=None if tenants is None else frozenset(uuid.UUID(t) for t in tenants),
            correlation_id="",
            source_address=claims.get("src") or "",
        )
        return ctx, float(claims["exp"])


def _remember(cache: dict, key: object, value: object, limit: int) -> None:  # type: ignore[type-arg]
    """Insert, dropping the oldest entries beyond `limit` (dicts keep insertion order)."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > limit:
        del cache[next(iter(cache))]
