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


# Passwords people pick first (length 12 and over, since shorter ones fail anyway), lower-case.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456123456",
        "111111111111",
        "000000000000",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "password!123",
        "p@ssw0rd1234",
        "qwertyuiopas",
        "qwerty123456",
        "qwertyqwerty",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "welcome@1234",
        "administrator",
        "admin1234567",
        "adminadmin123",
        "changeme1234",
        "abcdefghijkl",
        "abc123abc123",
        "monkey123456",
        "dragon123456",
        "sunshine1234",
        "football1234",
        "baseball1234",
        "princess1234",
        "trustno11234",
        "starwars1234",
        "superman1234",
        "asdfghjklasdf",
        "zxcvbnm12345",
        "canopy123456",
        "canopycanopy",
        "passwort1234",
        "hallo1234567",
        "sommer123456",
        "winter123456",
        "correcthorsebatterystaple",
    }
)


class UserStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    ERASED = "erased"


class MembershipStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class Membership:
    account_id: uuid.UUID
    status: MembershipStatus
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    display_name: str
    status: UserStatus
    created_at: datetime
    updated_at: datetime
    # In the account asked about, when there is one.
    membership: MembershipStatus | None = None

    @property
    def active(self) -> bool:
        return self.status is UserStatus.ACTIVE

    @property
    def email_domain(self) -> str:
        return email_domain(self.email)


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
    lowered = password.strip().lower()
    if lowered == email.strip().lower():
        raise WeakPassword("password must not be the email address")
    if lowered == email.strip().lower().partition("@")[0]:
        raise WeakPassword("password must not be the email's user name")
    if lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        raise WeakPassword("password is too common; choose another")


def email_domain(email: str) -> str:
    """The domain of an (already normalized) email, lower-case."""
    return email.rpartition("@")[2].lower()


def erased_email(user_id: uuid.UUID) -> str:
    """What an erased user's email becomes: unique, and nobody's address."""
    return f"erased-{user_id.hex}@erased.invalid"


def display_name(value: str) -> str:
    """A display name with its whitespace collapsed."""
    name = " ".join(value.split())
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidDisplayName(
            f"display_name must be at most {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    return name
