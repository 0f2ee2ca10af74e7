"""Who is calling: the bearer JWT identity issued, verified with identity's public keys (JWKS),
or an API key (`Bearer cpy_...` or `X-API-Key`), which only identity can check (gateway.authz).
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import jwt

from canopy.identity.v1 import identity_pb2
from gateway.problems import from_rpc_error, unauthenticated

log = logging.getLogger(__name__)

ISSUER = "canopy-identity"
AUDIENCE = "canopy"
ALGORITHM = "EdDSA"

FetchJwks = Callable[[], Awaitable[identity_pb2.Jwks]]

API_KEY_PREFIX = "cpy_"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as identity's token (or API key) says."""

    id: str
    kind: str
    # The token's id (jti) or the API key's id: part of every cache key.
    credential_id: str = ""
    # The account the credential is bound to (a switched token's `acc`, an API key's account).
    account_id: str = ""
    # An API key's subset of its owner's permissions; None: no subset (tokens, unrestricted keys).
    key_permissions: frozenset[str] | None = None
    via: str = "token"  # or "api_key"


@dataclass(frozen=True)
class Credential:
    """What the request presents: a bearer JWT or an API key (never both)."""

    kind: str  # "token" or "api_key"
    secret: str


def credential_of(authorization: str | None, api_key: str | None) -> Credential:
    """The request's one credential, or a 401 problem."""
    key = (api_key or "").strip()
    if key:
        if authorization:
            raise unauthenticated("send either an Authorization header or X-API-Key, not both")
        return Credential("api_key", key)
    token = bearer_token(authorization)
    if token.startswith(API_KEY_PREFIX):
        return Credential("api_key", token)
    return Credential("token", token)


class JwksCache:
    """Identity's signing keys by key id, kept for `ttl` seconds.

    A token whose key id is not known triggers one refetch (identity may have rotated its key),
    at most once per `refetch_floor` seconds so a stream of made-up key ids cannot hammer
    identity. Concurrent refetches share one call.
    """

    def __init__(
        self,
        fetch: FetchJwks,
        *,
        ttl: float,
        refetch_floor: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._floor = refetch_floor
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def keys(self) -> dict[str, jwt.PyJWK]:
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl:
            await self._refresh(since=self._fetched_at)
        return self._keys

    async def keys_knowing(self, kid: str) -> dict[str, jwt.PyJWK]:
        """The keys, refetched once if `kid` is not among them."""
        keys = await self.keys()
        if kid in keys:
            return keys
        fetched_at = self._fetched_at
        if fetched_at is not None and self._clock() - fetched_at < self._floor:
            return keys
        await self._refresh(since=fetched_at)
        return self._keys

    async def _refresh(self, *, since: float | None) -> None:
        async with self._lock:
            if self._fetched_at != since:
                return  # another request refreshed while this one waited
            try:
                jwks = await self._fetch()
            except grpc.RpcError as error:
                fields = {"code": _code(error)}
                log.warning("cannot fetch identity's JWKS", extra={"fields": fields})
                raise from_rpc_error(error, service="identity") from error
            self._keys = keys_of(jwks)
            self._fetched_at = self._clock()


def keys_of(jwks: identity_pb2.Jwks) -> dict[str, jwt.PyJWK]:
    """The Ed25519 signing keys of a JWKS, by key id; anything else is skipped."""
    keys = {}
    for key in jwks.keys:
        if key.kty != "OKP" or key.crv != "Ed25519" or key.use not in ("", "sig"):
            continue
        if key.alg not in ("", ALGORITHM):
            continue
        try:
            keys[key.kid] = jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": key.x}, ALGORITHM)
        except jwt.PyJWTError:
            log.warning("skipping a malformed JWK", extra={"fields": {"kid": key.kid}})
    return keys


class Authenticator:
    """Turns an `Authorization: Bearer <jwt>` header into a Principal, or a 401 problem."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        leeway: float = 0.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jwks = jwks
        self.leeway = leeway
        self._max = max_cached
        self._clock = clock
        # Token -> (its exp, key id, the key that verified it, the principal): a token seen
        # before is not verified again while it is unexpired and its key is still published.
        self._verified: dict[str, tuple[float, str, jwt.PyJWK, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        known = self._verified.get(token)
        if known is not None:
            expires, kid, key, principal = known
            if self._clock() < expires and (await self.jwks.keys()).get(kid) is key:
                return principal
            del self._verified[token]
        principal, kid, key, expires = await self._authenticate(token)
        if key is not None and isinstance(expires, int | float):
            self._remember(token, (float(expires), kid, key, principal))
        return principal

    def _remember(self, token: str, entry: tuple[float, str, jwt.PyJWK, Principal]) -> None:
        if len(self._verified) >= self._max:
            now = self._clock()
            for stale in [t for t, known in self._verified.items() if known[0] <= now]:
                del self._verified[stale]
            while len(self._verified) >= self._max:
                del self._verified[next(iter(self._verified))]
        self._verified[token] = entry

    async def _authenticate(self, token: str) -> tuple[Principal, str, jwt.PyJWK | None, Any]:
        """The principal, the key id and key that verified the token (None: no key id), exp."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise unauthenticated("the bearer token is not a JWT") from error
        if header.get("alg") != ALGORITHM:
            raise unauthenticated("the bearer token is not signed by Canopy identity")
        kid = header.get("kid")
        if isinstance(kid, str) and kid:
            keys = await self.jwks.keys_knowing(kid)
            candidates = [keys[kid]] if kid in keys else []
        else:
            candidates = list((await self.jwks.keys()).values())
        if not candidates:
            raise unauthenticated("the bearer token is signed with an unknown key")
        claims = self._verify(token, candidates)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise unauthenticated("the bearer token names no subject")
        account = claims.get("acc") or ""
        token_id = claims.get("jti") or ""
        if not isinstance(account, str) or not isinstance(token_id, str):
            raise unauthenticated("the bearer token is invalid")
        if account:
            try:
                account = str(uuid.UUID(account))
            except ValueError as error:
                raise unauthenticated("the bearer token names a malformed account") from error
        principal = Principal(id=subject, kind="user", credential_id=token_id, account_id=account)
        used = candidates[0] if isinstance(kid, str) and kid else None
        return principal, kid if used is not None else "", used, claims.get("exp")

    def _verify(self, token: str, candidates: list[jwt.PyJWK]) -> dict[str, Any]:
        error: jwt.PyJWTError | None = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    issuer=ISSUER,
                    leeway=self.leeway,
                    options={"require": ["exp", "iss", "aud", "sub"]},
                )
            except jwt.InvalidSignatureError as failed:
                error = failed
            except jwt.ExpiredSignatureError as failed:
                raise unauthenticated("the bearer token has expired") from failed
            except (jwt.InvalidAudienceError, jwt.InvalidIssuerError) as failed:
                raise unauthenticated("the bearer token was not issued for Canopy") from failed
            except jwt.MissingRequiredClaimError as failed:
                raise unauthenticated(f"the bearer token has no {failed.claim} claim") from failed
            except jwt.PyJWTError as failed:
                raise unauthenticated("the bearer token is invalid") from failed
        raise unauthenticated("the bearer token's signature is invalid") from error


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise unauthenticated(
            "this endpoint needs an Authorization: Bearer <token> header (or an X-API-Key)"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _code(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
