"""SFTP logins: creating them, signing clients in (passwords, public keys, lockouts after
failures), and their lifecycle (disable, enable, unlock, rotate, keys, guarded hard delete)."""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services.ingestion.adapters.db.repositories import Repositories
from services.ingestion.adapters.events import builders
from services.ingestion.domain.lockouts import FailureState
from services.ingestion.domain.logins import (
    MAX_KEY_COMMENT_LENGTH,
    MAX_KEYS_PER_LOGIN,
    USERNAME_PATTERN,
    LoginCredentials,
    LoginKey,
    SftpLogin,
    SftpSession,
    check_password,
    checked_username,
    hard_delete_blockers,
    normalise_username,
)
from services.ingestion.service_layer import confirmations
from services.ingestion.service_layer.passwords import (
    hash_password,
    spend_verification_time,
    verify_password,
)
from services.ingestion.service_layer.ports import Ports
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed
from services.runtime.ids import new_id

log = logging.getLogger(__name__)

DELETE_PURPOSE = "ingestion.login.delete"


def _now() -> datetime:
    return datetime.now(UTC)


# Creating and reading


async def create_sftp_login(
    *, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID, username: str, password: str
) -> SftpLogin:
    """A login for a drop zone of the caller's account; the login belongs to that account.
    A username once used by a deleted login is never issued again."""
    account_id = ctx.require_account()
    username = checked_username(username)
    check_password(password)
    password_hash = await hash_password(password)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        zone = await repos.dropzones.get(account_id, dropzone_id, visible=ctx.tenant_ids)
        if zone is None:
            raise NotFound(f"drop zone {dropzone_id} not found")
        if await repos.logins.is_retired(username):
            raise AlreadyExists(f"the username {username!r} belonged to a deleted login")
        now = _now()
        login = SftpLogin(
            id=new_id(),
            account_id=zone.account_id,
            dropzone_id=zone.id,
            username=username,
            created_at=now,
            updated_at=now,
        )
        await repos.logins.add(login, password_hash=password_hash)
        await ports.outbox.add(session, builders.login_created(login, ctx))
    return login


async def _visible_login(
    repos: Repositories, ctx: CallContext, login_id: uuid.UUID, *, for_update: bool = False
) -> SftpLogin:
    """The login, when its drop zone is one the caller sees."""
    account_id = ctx.require_account()
    login = await repos.logins.get(account_id, login_id, for_update=for_update)
    if login is None or (
        await repos.dropzones.get(account_id, login.dropzone_id, visible=ctx.tenant_ids) is None
    ):
        raise NotFound(f"login {login_id} not found")
    return login


async def get_login(*, ports: Ports, ctx: CallContext, login_id: uuid.UUID) -> SftpLogin:
    async with ports.db.transaction(Scope.of(ctx)) as session:
        return await _visible_login(Repositories(session), ctx, login_id)


async def list_logins(*, ports: Ports, ctx: CallContext, dropzone_id: uuid.UUID) -> list[SftpLogin]:
    account_id = ctx.require_account()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        if await repos.dropzones.get(account_id, dropzone_id, visible=ctx.tenant_ids) is None:
            raise NotFound(f"drop zone {dropzone_id} not found")
        return await repos.logins.of_zone(account_id, dropzone_id)


@dataclass(frozen=True)
class AddressLockout:
    address: str
    state: FailureState


async def list_lockouts(
    *, ports: Ports, ctx: CallContext
) -> tuple[list[SftpLogin], list[AddressLockout]]:
    """Logins of the account locked now, and source addresses locked after failing
    against the account's logins."""
    account_id = ctx.require_account()
    now = _now()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        logins = await repos.logins.locked(account_id, now)
        visible = {
            z.id
            for z in await repos.dropzones.page(
                account_id, after=None, limit=10_000, visible=ctx.tenant_ids
            )
        }
        addresses = await repos.addresses.locked_for(account_id, now)
    return (
        [login for login in logins if login.dropzone_id in visible],
        [AddressLockout(address, state) for address, state in addresses],
    )


# Lifecycle


async def _change(
    *, ports: Ports, ctx: CallContext, login_id: uuid.UUID, verb: str, **values: object
) -> SftpLogin:
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        login = await _visible_login(repos, ctx, login_id, for_update=True)
        await repos.logins.update(login.id, login.account_id, **values)
        changed = await repos.logins.get(login.account_id, login.id)
        assert changed is not None
        await ports.outbox.add(session, builders.login_changed(verb, changed, ctx))
    return changed


async def disable_login(*, ports: Ports, ctx: CallContext, login_id: uuid.UUID) -> SftpLogin:
    """Soft delete: no sign-in any more (open connections are closed); files stay."""
    async with ports.db.transaction(Scope.of(ctx)) as session:
        current = await _visible_login(Repositories(session), ctx, login_id)
    if current.disabled_at is not None:
        return current
    login = await _change(
        ports=ports, ctx=ctx, login_id=login_id, verb="disabled", disabled_at=_now()
    )
    closed = ports.listener.disconnect(login.id)
    log.info(
        "sftp login disabled",
        extra={"fields": {"login_id": str(login.id), "connections_closed": closed}},
    )
    return login


async def enable_login(*, ports: Ports, ctx: CallContext, login_id: uuid.UUID) -> SftpLogin:
    async with ports.db.transaction(Scope.of(ctx)) as session:
        current = await _visible_login(Repositories(session), ctx, login_id)
    if current.disabled_at is None:
        return current
    return await _change(ports=ports, ctx=ctx, login_id=login_id, verb="enabled", disabled_at=None)


async def unlock_login(*, ports: Ports, ctx: CallContext, login_id: uuid.UUID) -> SftpLogin:
    """Forget the login's failed sign-ins and lift its lockout."""
    return await _change(
        ports=ports,
        ctx=ctx,
        login_id=login_id,
        verb="unlocked",
        failed_attempts=0,
        failures_since=None,
        locked_until=None,
        lockouts=0,
    )


async def rotate_password(
    *, ports: Ports, ctx: CallContext, login_id: uuid.UUID, password: str
) -> SftpLogin:
    check_password(password)
    password_hash = await hash_password(password)
    return await _change(
        ports=ports,
        ctx=ctx,
        login_id=login_id,
        verb="password_rotated",
        password_hash=password_hash,
    )


async def add_key(
    *, ports: Ports, ctx: CallContext, login_id: uuid.UUID, public_key: str
) -> LoginKey:
    """Add an OpenSSH public key the login may sign in with."""
    if ports.keys is None:
        raise InvalidInput("public keys cannot be read here")
    parsed = ports.keys.read(public_key)
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        login = await _visible_login(repos, ctx, login_id, for_update=True)
        if len(login.keys) >= MAX_KEYS_PER_LOGIN:
            raise InvalidInput(f"a login has at most {MAX_KEYS_PER_LOGIN} keys")
        key = LoginKey(
            id=new_id(),
            login_id=login.id,
            algorithm=parsed.algorithm,
            fingerprint=parsed.fingerprint,
            public_key=parsed.public_key,
            comment=parsed.comment[:MAX_KEY_COMMENT_LENGTH],
            created_at=_now(),
        )
        await repos.logins.add_key(key, login.account_id)
        await ports.outbox.add(
            session,
            builders.login_changed("key_added", login, ctx, key_fingerprint=key.fingerprint),
        )
    return key


async def remove_key(
    *, ports: Ports, ctx: CallContext, login_id: uuid.UUID, key_id: uuid.UUID
) -> SftpLogin:
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        login = await _visible_login(repos, ctx, login_id, for_update=True)
        key = await repos.logins.remove_key(login.account_id, login.id, key_id)
        if key is None:
            raise NotFound(f"key {key_id} of login {login_id} not found")
        await ports.outbox.add(
            session,
            builders.login_changed("key_removed", login, ctx, key_fingerprint=key.fingerprint),
        )
        changed = await repos.logins.get(login.account_id, login.id)
    assert changed is not None
    return changed


@dataclass(frozen=True)
class DeletionPlan:
    login: SftpLogin
    blockers: list[str]
    removes: list[str]
    keeps: list[str]
    token: str
    expires_at: datetime | None


def _deletion_state(login: SftpLogin) -> list[str]:
    return [
        str(login.id),
        login.disabled_at.isoformat() if login.disabled_at else "",
        login.updated_at.isoformat() if login.updated_at else "",
        *sorted(k.fingerprint for k in login.keys),
    ]


async def _deletion_check(
    repos: Repositories, ports: Ports, login: SftpLogin, now: datetime
) -> tuple[list[str], int]:
    waiting = await repos.files.waiting(login.account_id, login.dropzone_id)
    blockers = hard_delete_blockers(
        login, now=now, disabled_for=ports.policies.delete_after_disabled, files_waiting=waiting
    )
    return blockers, waiting


async def plan_deletion(*, ports: Ports, ctx: CallContext, login_id: uuid.UUID) -> DeletionPlan:
    """The dry run of a hard delete: what goes, what stays, what blocks it, and the token
    the delete must echo (valid only for the login as it is now, for a short while)."""
    now = _now()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        login = await _visible_login(repos, ctx, login_id)
        blockers, _ = await _deletion_check(repos, ports, login, now)
        stored = await repos.dropzones.usage(login.account_id, login.dropzone_id)
    removes = [
        f"login {login.id} ({login.username})",
        *(f"public key {k.fingerprint}" for k in login.keys),
        f"the username {login.username!r}, retired for good",
    ]
    keeps = [f"the drop zone {login.dropzone_id} and its {stored.files} file(s)"]
    token, expires_at = "", None
    if not blockers:
        expires_at = now + ports.policies.delete_confirmation_lifetime
        token = confirmations.issue(
            ports.policies.confirmation_key, DELETE_PURPOSE, _deletion_state(login), expires_at
        )
    return DeletionPlan(login, blockers, removes, keeps, token, expires_at)


async def delete_login(
    *, ports: Ports, ctx: CallContext, login_id: uuid.UUID, confirmation: str
) -> SftpLogin:
    """Hard delete, echoing a dry run's token; the username is retired so no new login can
    take it (and seem to inherit what the old one did)."""
    now = _now()
    async with ports.db.transaction(Scope.of(ctx)) as session:
        repos = Repositories(session)
        login = await _visible_login(repos, ctx, login_id, for_update=True)
        confirmations.check(
            ports.policies.confirmation_key,
            DELETE_PURPOSE,
            _deletion_state(login),
            confirmation,
            now,
        )
        blockers, _ = await _deletion_check(repos, ports, login, now)
        if blockers:
            raise PreconditionFailed("; ".join(blockers))
        await repos.logins.retire(login.username, account_id=login.account_id, login_id=login.id)
        await repos.logins.delete(login.account_id, login.id)
        await ports.outbox.add(session, builders.login_changed("deleted", login, ctx))
    ports.listener.disconnect(login.id)
    return login


# Signing in


def _sign_in_context(login: SftpLogin | None, source_address: str) -> CallContext:
    return CallContext(
        principal_id=str(login.id) if login else "",
        principal_kind="sftp_login",
        account_id=login.account_id if login else None,
        source_address=source_address,
    )


async def _credentials(ports: Ports, username: str) -> LoginCredentials | None:
    if not USERNAME_PATTERN.fullmatch(username):
        return None
    async with ports.db.transaction(Scope.nothing()) as session:
        return await Repositories(session).logins.credentials(username)


async def _address_locked(ports: Ports, source_address: str, now: datetime) -> bool:
    if not source_address:
        return False
    async with ports.db.transaction(Scope.nothing()) as session:
        state = await Repositories(session).addresses.get(source_address)
    return state.is_locked(now)


async def _login_of(ports: Ports, credentials: LoginCredentials) -> SftpLogin | None:
    scope = Scope(credentials.account_id, principal_id=str(credentials.login_id))
    async with ports.db.transaction(scope) as session:
        return await Repositories(session).logins.get(credentials.account_id, credentials.login_id)


async def _refused(
    ports: Ports,
    *,
    login: SftpLogin | None,
    source_address: str,
    reason: str,
    counts: bool,
) -> None:
    """Record a refused sign-in: count it against the login and the address (when `counts`),
    lock either when it makes too many, publish what happened, and slow the answer down."""
    now = _now()
    policy = ports.policies.lockout
    ctx = _sign_in_context(login, source_address)
    attempts = 0
    if login is not None:
        async with ports.db.transaction(Scope(login.account_id)) as session:
            repos = Repositories(session)
            current = await repos.logins.get(login.account_id, login.id, for_update=True)
            if current is not None and counts:
                state = current.failures.after_failure(now, policy)
                await repos.logins.set_failures(current.id, current.account_id, state)
                attempts = max(attempts, state.failed_attempts)
                if state.locks_now(current.failures, now):
                    await ports.outbox.add(
                        session,
                        builders.login_locked(
                            kind="login",
                            state=state,
                            login=current,
                            source_address=source_address,
                            ctx=ctx,
                        ),
                    )
                    log.warning(
                        "sftp login locked",
                        extra={
                            "fields": {
                                "login_id": str(current.id),
                                "until": str(state.locked_until),
                            }
                        },
                    )
            if current is not None:
                failed = current.failures.failed_attempts if not counts else attempts
                await ports.outbox.add(
                    session,
                    builders.login_failed(current, reason=reason, failed_attempts=failed, ctx=ctx),
                )
    if counts and source_address:
        async with ports.db.transaction(Scope.nothing()) as session:
            addresses = Repositories(session).addresses
            before = await addresses.get(source_address, for_update=True)
            state = before.after_failure(now, policy)
            await addresses.save(
                source_address, state, account_id=login.account_id if login else None
            )
            attempts = max(attempts, state.failed_attempts)
            if state.locks_now(before, now):
                log.warning(
                    "sftp source address locked",
                    extra={"fields": {"source_address": source_address}},
                )
                if login is not None:
                    async with ports.db.transaction(Scope(login.account_id)) as tx:
                        await ports.outbox.add(
                            tx,
                            builders.login_locked(
                                kind="address",
                                state=state,
                                login=login,
                                source_address=source_address,
                                ctx=ctx,
                            ),
                        )
    delay = policy.delay_for(attempts).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


async def sign_in(
    *, ports: Ports, username: str, password: str, source_address: str
) -> SftpSession | None:
    """The session of an enabled, unlocked login whose password matches, from an address
    that is not locked; None otherwise (every refusal looks the same to the client)."""
    username = normalise_username(username)
    fields = {"username": username, "source_address": source_address}
    now = _now()
    credentials = await _credentials(ports, username)
    login = await _login_of(ports, credentials) if credentials else None
    if await _address_locked(ports, source_address, now):
        log.info("sftp sign-in refused: source address locked", extra={"fields": fields})
        await _refused(
            ports, login=login, source_address=source_address, reason="address_locked", counts=False
        )
        return None
    if credentials is None or login is None or credentials.disabled:
        await spend_verification_time(password)
        log.info("sftp sign-in refused: unknown or disabled login", extra={"fields": fields})
        await _refused(
            ports,
            login=login,
            source_address=source_address,
            reason="disabled",
            counts=True,
        )
        return None
    if login.failures.is_locked(now):
        log.info("sftp sign-in refused: login locked", extra={"fields": fields})
        await _refused(
            ports, login=login, source_address=source_address, reason="locked", counts=False
        )
        return None
    if not await verify_password(credentials.password_hash, password):
        log.info("sftp sign-in refused: wrong password", extra={"fields": fields})
        await _refused(
            ports,
            login=login,
            source_address=source_address,
            reason="wrong_password",
            counts=True,
        )
        return None
    return await _session(ports, login, source_address, method="password")


async def key_sign_in(
    *, ports: Ports, username: str, fingerprint: str, source_address: str
) -> SftpSession | None:
    """The session a public key would open, when the key is one of the login's and the
    login and address may sign in. Keys a client merely offers are not counted as failures
    (agents offer several); asyncssh then checks the client's signature."""
    username = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(username):
        return None
    now = _now()
    async with ports.db.transaction(Scope.nothing()) as session:
        login_id = await Repositories(session).logins.login_with_key(username, fingerprint)
    if login_id is None:
        return None
    credentials = await _credentials(ports, username)
    if credentials is None or credentials.login_id != login_id or credentials.disabled:
        return None
    login = await _login_of(ports, credentials)
    if login is None or login.failures.is_locked(now):
        return None
    if await _address_locked(ports, source_address, now):
        return None
    return await _session(ports, login, source_address, method="publickey")


async def _session(
    ports: Ports, login: SftpLogin, source_address: str, *, method: str
) -> SftpSession | None:
    async with ports.db.transaction(Scope(login.account_id)) as session:
        zone = await Repositories(session).dropzones.get(login.account_id, login.dropzone_id)
    if zone is None:
        log.info(
            "sftp sign-in refused: drop zone is gone",
            extra={"fields": {"login_id": str(login.id)}},
        )
        return None
    return SftpSession(
        login_id=login.id,
        account_id=login.account_id,
        dropzone_id=login.dropzone_id,
        username=login.username,
        source_address=source_address,
        method=method,
    )


async def signed_in(*, ports: Ports, session: SftpSession) -> None:
    """A client finished signing in: forget the login's and the address's failures."""
    async with ports.db.transaction(Scope(session.account_id)) as tx:
        repos = Repositories(tx)
        login = await repos.logins.get(session.account_id, session.login_id, for_update=True)
        if login is not None and login.failures != FailureState():
            await repos.logins.set_failures(login.id, login.account_id, FailureState())
    if session.source_address:
        async with ports.db.transaction(Scope.nothing()) as tx:
            await Repositories(tx).addresses.clear(session.source_address)
