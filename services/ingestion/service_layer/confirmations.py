"""Confirmation tokens of guarded operations: an HMAC over what was shown in a dry run, so the
real operation runs only on the very state the admin saw, and only for a short while."""

import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime

from services.runtime.errors import PreconditionFailed


def _mac(key: bytes, purpose: str, state: Iterable[str], expires: int) -> str:
    message = "\x1f".join([purpose, *state, str(expires)]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def issue(key: bytes, purpose: str, state: Iterable[str], expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{expires}.{_mac(key, purpose, state, expires)}"


def check(key: bytes, purpose: str, state: Iterable[str], token: str, now: datetime) -> None:
    """Refuse a token that is malformed, expired, or issued for another state."""
    expires_text, _, mac = token.strip().partition(".")
    if not expires_text.isdigit() or not mac:
        raise PreconditionFailed("the confirmation token is not valid: run the dry run again")
    expires = int(expires_text)
    if datetime.fromtimestamp(expires, UTC) < now:
        raise PreconditionFailed("the confirmation token has expired: run the dry run again")
    if not hmac.compare_digest(mac, _mac(key, purpose, state, expires)):
        raise PreconditionFailed(
            "the confirmation token does not match the login's current state: run the dry run again"
        )
