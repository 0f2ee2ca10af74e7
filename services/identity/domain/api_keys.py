"""API keys: `cpy_<prefix>_<secret>`; the prefix finds the key, only the secret's hash is kept."""

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.identity.domain.errors import InvalidInput
from services.identity.domain.roles import PrincipalKind

KEY_SCHEME = "cpy"
DEFAULT_LIFETIME = timedelta(days=90)
LONGEST_LIFETIME = timedelta(days=365)
MAX_NAME_LENGTH = 100

_KEY = re.compile(r"^cpy_(?P<prefix>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{32,128})$")


def format_key(prefix: str, secret: str) -> str:
    return f"{KEY_SCHEME}_{prefix}_{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    return (match["prefix"], match["secret"]) if match else None


def secret_hash(secret: str) -> bytes:
    """SHA-256 suffices: the secret is 256 random bits, not a password someone chose."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored)


def lifetime(days: int) -> timedelta:
    if days < 0:
        raise InvalidInput("expires_in_days must not be negative")
    if days == 0:
        return DEFAULT_LIFETIME
    if timedelta(days=days) > LONGEST_LIFETIME:
        raise InvalidInput(f"an API key lives at most {LONGEST_LIFETIME.days} days")
    return timedelta(days=days)


def key_name(value: str) -> str:
    name = " ".join(value.split())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    account_id: uuid.UUID
    owner_id: uuid.UUID
    owner_kind: PrincipalKind
    name: str
    prefix: str
    permissions: tuple[str, ...]
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class ServiceAccount:
    id: uuid.UUID
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.deleted_at is None


def service_account_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidInput("name is required")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    return name
