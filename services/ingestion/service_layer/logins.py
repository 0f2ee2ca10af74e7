"""Creating SFTP logins and checking their passwords when a client signs in."""

import logging
import uuid
from datetime import UTC, datetime

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.adapters.events import builders
from services.ingestion.domain.logins import (
    USERNAME_PATTERN,
    SftpLogin,
    SftpSession,
    check_password,
    checked_username,
    normalise_username,
)
from services.ingestion.service_layer.passwords import (
    hash_password,
    spend_verification_time,
    verify_password,
)
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import NotFound
from services.runtime.ids import new_id

log = logging.getLogger(__name__)


async def create_sftp_login(
    *, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID, username: str, password: str
) -> SftpLogin:
    """A login for a drop zone of the caller's account; the login belongs to that account."""
    account_id = ctx.require_account()
    username = checked_username(username)
    check_password(password)
    password_hash = await hash_password(password)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        zone = await repos.dropzones.get(account_id, dropzone_id)
        if zone is None:
            raise NotFound(f"drop zone {dropzone_id} not found")
        login = SftpLogin(
            id=new_id(),
            account_id=zone.account_id,
            dropzone_id=zone.id,
            username=username,
            created_at=datetime.now(UTC),
        )
        await repos.logins.add(login, password_hash=password_hash)
        await ports.outbox.add(session, builders.login_created(login, ctx))
    return login


async def sign_in(
    *, ports: Ports, username: str, password: str, source_address: str
) -> SftpSession | None:
    """The session of a login whose password matches and whose drop zone still exists."""
    username = normalise_username(username)
    fields = {"username": username, "source_address": source_address}
    credentials = None
    if USERNAME_PATTERN.fullmatch(username):
        async with ports.db.transaction(Scope.nothing()) as session:
            credentials = await Repositories(session).logins.credentials(username)
    if credentials is None or credentials.disabled:
        await spend_verification_time(password)
        log.info("sftp sign-in refused: unknown or disabled login", extra={"fields": fields})
        return None
    if not await verify_password(credentials.password_hash, password):
        log.info("sftp sign-in refused: wrong password", extra={"fields": fields})
        return None
    scope = Scope(credentials.account_id, principal_id=str(credentials.login_id))
    async with ports.db.transaction(scope) as session:
        zone = await Repositories(session).dropzones.get(
            credentials.account_id, credentials.dropzone_id
        )
    if zone is None:
        log.info("sftp sign-in refused: drop zone is gone", extra={"fields": fields})
        return None
    return SftpSession(
        login_id=credentials.login_id,
        account_id=credentials.account_id,
        dropzone_id=credentials.dropzone_id,
        username=username,
        source_address=source_address,
    )
