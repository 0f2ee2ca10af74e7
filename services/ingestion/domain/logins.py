"""SFTP logins: a username and password that land in exactly one drop zone."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from services.runtime.errors import InvalidInput

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
# Long enough for any passphrase, short enough that hashing stays cheap.
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class SftpLogin:
    id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    username: str
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class LoginCredentials:
    """What the SFTP server needs to check a password, found before the account is known."""

    login_id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    password_hash: str
    disabled: bool


def normalise_username(username: str) -> str:
    """Usernames are unique platform-wide regardless of case, so they are kept in lower case."""
    return username.strip().lower()


def checked_username(username: str) -> str:
    normalised = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(normalised):
        raise InvalidInput(
            "username must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return normalised


def check_password(password: str) -> None:
    """Refuse passwords that are too short or too long (never echoing them)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at most {MAX_PASSWORD_LENGTH} characters")


@dataclass(frozen=True)
class SftpSession:
    """A signed-in SFTP client: which login, account and drop zone, and from where."""

    login_id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    username: str
    source_address: str = ""
