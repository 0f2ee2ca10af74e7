"""Users: global principals whose email is the username; the email and password rules."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.identity.domain.errors import InvalidDisplayName, InvalidEmail, WeakPassword

MIN_PASSWORD_LENGTH = 12
# Bounds the work one sign-in can ask of argon2.
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 200

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL = re.compile(
    r"^(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    rf"@(?P<domain>{_LABEL}(?:\.{_LABEL})+)$"
)


class UserStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    display_name: str
    status: UserStatus
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status is UserStatus.ACTIVE


def normalize_email(value: str) -> str:
    """The email as stored: trimmed, domain in lower case; raises InvalidEmail if malformed."""
    email = value.strip()
    if not email:
        raise InvalidEmail("email is required")
    local, at, domain = email.rpartition("@")
    email = f"{local}{at}{domain.lower()}"
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email) or len(local) > 64:
        raise InvalidEmail(f"email is not a valid address: {value.strip()[:MAX_EMAIL_LENGTH]!r}")
    return email


def check_password(password: str, *, email: str) -> None:
    """Raise WeakPassword unless `password` may be set for the user with `email`."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if not password.strip():
        raise WeakPassword("password must not be only whitespace")
    if password.strip().lower() == email.strip().lower():
        raise WeakPassword("password must not be the email address")


def display_name(value: str) -> str:
    """A display name with its whitespace collapsed."""
    name = " ".join(value.split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidDisplayName(
            f"display_name must be at most {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    return name
