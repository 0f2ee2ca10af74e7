"""Access tokens and their signing keys: claims, JWK form and key ids (RFC 7517, 7638, 8037)."""

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

ISSUER = "canopy-identity"
AUDIENCE = "canopy"
ALGORITHM = "EdDSA"
TOKEN_TYPE = "Bearer"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    token_type: str
    expires_in: int
    account_id: uuid.UUID | None = None
    refresh_token: str = ""
    refresh_expires_in: int = 0


@dataclass(frozen=True)
class StoredRefreshToken:
    """A refresh token as kept: only its hash, the family (one sign-in) and its state."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    account_id: uuid.UUID | None
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > now


def token_hash(token: str) -> bytes:
    """SHA-256 of a random refresh token (256 bits of entropy: no slow hash needed)."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class PublicKey:
    """A signing key's public half, as published in the JWKS."""

    kid: str
    public_key: bytes  # raw 32-byte Ed25519 public key
    created_at: datetime
    retired_at: datetime | None = None


def access_token_claims(
    *,
    user_id: uuid.UUID,
    token_id: uuid.UUID,
    issued_at: int,
    lifetime_seconds: int,
    account_id: uuid.UUID | None = None,
) -> dict[str, object]:
    """Who the bearer is, for which account and how long; never roles or permissions."""
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "jti": str(token_id),
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
    }
    if account_id is not None:
        claims["acc"] = str(account_id)
    return claims


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(kid: str, public_key: bytes) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key),
        "kid": kid,
        "alg": ALGORITHM,
        "use": "sig",
    }


def key_id(public_key: bytes) -> str:
    """The RFC 7638 thumbprint of the key's JWK: stable, and derived from the key alone."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())
