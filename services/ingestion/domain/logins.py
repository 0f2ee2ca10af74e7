"""SFTP logins: a username with a password and public keys, landing in exactly one drop zone;
disabled, enabled, locked after failures, and hard-deleted only under guard rails."""

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.ingestion.domain.lockouts import FailureState
from services.runtime.errors import InvalidInput

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 12
# Long enough for any passphrase, short enough that hashing stays cheap.
MAX_PASSWORD_LENGTH = 1024


MAX_KEYS_PER_LOGIN = 20
MAX_KEY_COMMENT_LENGTH = 200


@dataclass(frozen=True)
class LoginKey:
    """One OpenSSH public key a login signs in with, known by its SHA-256 fingerprint."""

    id: uuid.UUID
    login_id: uuid.UUID
    algorithm: str
    fingerprint: str
    public_key: str
    comment: str
    created_at: datetime


@dataclass(frozen=True)
class SftpLogin:
    id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    username: str
    created_at: datetime
    updated_at: datetime | None = None
    disabled_at: datetime | None = None
    failures: FailureState = field(default_factory=FailureState)
    keys: tuple[LoginKey, ...] = ()


@dataclass(frozen=True)
class LoginCredentials:
    """What the SFTP server needs to check a password, found before the account is known."""

    login_id: uuid.UUID
    account_id: uuid.UUID
    dropzone_id: uuid.UUID
    password_hash: str
    disabled: bool


def hard_delete_blockers(
    login: SftpLogin, *, now: datetime, disabled_for: timedelta, files_waiting: int
) -> list[str]:
    """Why a login cannot be hard-deleted yet (none: it can). Only a login disabled for at
    least `disabled_for`, whose drop zone has no file still waiting for its load, can go."""
    blockers = []
    if login.disabled_at is None:
        blockers.append("the login is not disabled: disable it first")
    elif now - login.disabled_at < disabled_for:
        ready = login.disabled_at + disabled_for
        blockers.append(
            f"the login has been disabled for less than {disabled_for}"
            f" (it can be deleted from {ready.isoformat()})"
        )
    if files_waiting:
        blockers.append(f"{files_waiting} file(s) of its drop zone are still being processed")
    return blockers


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
    # "password" or "publickey".
    method: str = "password"
