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


@dataclass(frozen=True)
class PublicKey:
    """A signing key's public half, as published in the JWKS."""

    kid: str
    public_key: bytes  # raw 32-byte Ed25519 public key
    created_at: datetime
    retired_at: datetime | None = None


def access_token_claims(
    *, user_id: uuid.UUID, token_id: uuid.UUID, issued_at: int, lifetime_seconds: int
) -> dict[str, object]:
    """Who the bearer is and for how long; permissions are resolved per account, never inside."""
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "jti": str(token_id),
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
    }


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
