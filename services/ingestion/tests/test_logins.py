"""SFTP logins through the real API and SSH: public keys, lockouts after failed sign-ins, and
the lifecycle (disable, enable, rotate, hard delete with its guard rails, retired usernames)."""

import asyncssh
import grpc

from canopy.canonical.v1 import canonical_pb2
from canopy.common.v1 import events_pb2
from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.tests.helpers import (
    PASSWORD,
    Account,
    Service,
    all_published,
    connect,
    eventually,
    fresh_source,
    publish,
    published,
    sftp_client,
    unique_username,
    upload,
)
from services.runtime.events import unpack

NEW_PASSWORD = "another long passphrase"


async def new_login(service: Service) -> tuple[Account, ingestion_pb2.DropZone, str, str]:
    account = service.account()
    zone = await account.dropzone()
    login = await account.login(zone)
    return account, zone, login.id, login.username


async def can_sign_in(
    service: Service,
    username: str,
    *,
    password: str | None = PASSWORD,
    keys: list[asyncssh.SSHKey] | None = None,
    source: str = "127.0.0.1",
) -> bool:
    try:
        async with connect(
            service.config, username, password=password, client_keys=keys, source=source
        ) as conn:
            async with conn.start_sftp_client() as sftp:
                await sftp.listdir("/")
        return True
    except asyncssh.PermissionDenied:
        return False


async def call(coroutine: object) -> grpc.StatusCode:
    try:
        await coroutine  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_login_signs_in_with_any_of_its_keys_and_not_a_removed_one(
    service: Service,
) -> None:
    account, _, login_id, username = await new_login(service)
    first, second, stranger = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(3))
    added = []
    for key in (first, second):
        added.append(
            await service.stub.AddSftpLoginKey(
                ingestion_pb2.AddSftpLoginKeyRequest(
                    login_id=login_id,
                    public_key=key.export_public_key().decode().strip() + " dealer@laptop",
                ),
                metadata=account.metadata(),
            )
        )
    assert added[0].fingerprint == first.get_fingerprint("sha256")
    assert (added[0].algorithm, added[0].comment) == ("ssh-ed25519", "dealer@laptop")
    login = await service.stub.GetSftpLogin(
        ingestion_pb2.GetSftpLoginRequest(login_id=login_id), metadata=account.metadata()
    )
    assert [k.fingerprint for k in login.keys] == [k.fingerprint for k in added]

    assert await can_sign_in(service, username, password=None, keys=[first])
    assert await can_sign_in(service, username, password=None, keys=[second])
    assert not await can_sign_in(service, username, password=None, keys=[stranger])

    await service.stub.RemoveSftpLoginKey(
        ingestion_pb2.RemoveSftpLoginKeyRequest(login_id=login_id, key_id=added[0].id),
        metadata=account.metadata(),
    )
    assert not await can_sign_in(service, username, password=None, keys=[first])
    assert await can_sign_in(service, username, password=None, keys=[second])

    removed = await published(
        service.js,
        "canopy.ingestion.login.key_removed",
        lambda e: e.account_id == str(account.id),
    )
    payload = unpack(removed, ingestion_pb2.SftpLoginChanged)
    assert isinstance(payload, ingestion_pb2.SftpLoginChanged)
    assert payload.key_fingerprint == added[0].fingerprint


async def test_bad_keys_and_the_same_key_twice_are_refused(service: Service) -> None:
    account, _, login_id, _ = await new_login(service)
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    for text in ("", "ssh-ed25519 not-base64", "-----BEGIN OPENSSH PRIVATE KEY-----", key * 2):
        code = await call(
            service.stub.AddSftpLoginKey(
                ingestion_pb2.AddSftpLoginKeyRequest(login_id=login_id, public_key=text),
                metadata=account.metadata(),
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, text
    request = ingestion_pb2.AddSftpLoginKeyRequest(login_id=login_id, public_key=key)
    await service.stub.AddSftpLoginKey(request, metadata=account.metadata())
    code = await call(service.stub.AddSftpLoginKey(request, metadata=account.metadata()))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    stranger = service.account()
    code = await call(service.stub.AddSftpLoginKey(request, metadata=stranger.metadata()))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_repeated_wrong_passwords_lock_the_login_even_against_the_right_one(
    service: Service,
) -> None:
    account, _, login_id, username = await new_login(service)
    source = fresh_source()
    for _ in range(service.config.lockout_failures):
        assert not await can_sign_in(service, username, password="wrong password!", source=source)
    # locked: the right password, from anywhere, is refused too
    assert not await can_sign_in(service, username)
    login = await service.stub.GetSftpLogin(
        ingestion_pb2.GetSftpLoginRequest(login_id=login_id), metadata=account.metadata()
    )
    assert login.lockout.kind == "login" and login.lockout.lockouts == 1
    locked_for = login.lockout.locked_until.seconds - login.updated_at.seconds
    assert 14 * 60 < locked_for <= 16 * 60
    lockouts = await service.stub.ListLockouts(
        ingestion_pb2.ListLockoutsRequest(), metadata=account.metadata()
    )
    assert {(x.kind, x.login_id, x.source_address) for x in lockouts.lockouts} == {
        ("login", login_id, ""),
        ("address", "", source),  # the same failures came from one address
    }

    def of_account(event: events_pb2.Event) -> bool:
        return event.account_id == str(account.id)

    locked = await published(service.js, "canopy.ingestion.login.locked", of_account)
    assert unpack(locked, ingestion_pb2.SftpLoginLocked).lockout.login_id == login_id  # type: ignore[attr-defined]
    failed = [
        e for e in await all_published(service.js, "canopy.ingestion.login.failed") if of_account(e)
    ]
    reasons = [unpack(e, ingestion_pb2.SftpLoginFailed).reason for e in failed]  # type: ignore[attr-defined]
    assert reasons.count("wrong_password") == service.config.lockout_failures
    assert "locked" in reasons
    assert all(b"wrong password!" not in e.SerializeToString() for e in failed)
    assert all(PASSWORD.encode() not in e.SerializeToString() for e in failed)

    await service.stub.UnlockSftpLogin(
        ingestion_pb2.LoginActionRequest(login_id=login_id), metadata=account.metadata()
    )
    assert await can_sign_in(service, username)


async def test_repeated_failures_from_one_address_lock_that_address_for_every_login(
    service: Service,
) -> None:
    account, _, _, username = await new_login(service)
    _, _, _, bystander = await new_login(service)
    source = fresh_source()
    for attempt in range(service.config.lockout_failures):
        user = username if attempt % 2 else f"nobody-{attempt}-{unique_username()}"
        assert not await can_sign_in(service, user, password="wrong password!", source=source)
    assert not await can_sign_in(service, bystander, source=source)
    assert await can_sign_in(service, bystander)  # from another address
    lockouts = await service.stub.ListLockouts(
        ingestion_pb2.ListLockoutsRequest(), metadata=account.metadata()
    )
    assert ("address", source) in [(x.kind, x.source_address) for x in lockouts.lockouts]
    stranger = service.account()
    theirs = await service.stub.ListLockouts(
        ingestion_pb2.ListLockoutsRequest(), metadata=stranger.metadata()
    )
    assert theirs.lockouts == []


async def test_a_disabled_login_cannot_sign_in_until_enabled_and_its_files_stay(
    service: Service,
) -> None:
    account, zone, login_id, username = await new_login(service)
    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_kept.csv", b"1\n")
    disabled = await service.stub.DisableSftpLogin(
        ingestion_pb2.LoginActionRequest(login_id=login_id), metadata=account.metadata()
    )
    assert disabled.disabled and disabled.HasField("disabled_at")
    assert not await can_sign_in(service, username)
    assert [f.name for f in await account.files(zone)] == ["customers_kept.csv"]
    enabled = await service.stub.EnableSftpLogin(
        ingestion_pb2.LoginActionRequest(login_id=login_id), metadata=account.metadata()
    )
    assert not enabled.disabled
    assert await can_sign_in(service, username)
    for verb in ("disabled", "enabled"):
        await published(
            service.js,
            f"canopy.ingestion.login.{verb}",
            lambda e: e.account_id == str(account.id),
        )


async def test_disabling_a_login_closes_its_open_connections(service: Service) -> None:
    account, _, login_id, username = await new_login(service)
    async with connect(service.config, username, password=PASSWORD) as conn:
        await service.stub.DisableSftpLogin(
            ingestion_pb2.LoginActionRequest(login_id=login_id), metadata=account.metadata()
        )
        await conn.wait_closed()


async def test_a_rotated_password_replaces_the_old_one(service: Service) -> None:
    account, _, login_id, username = await new_login(service)
    code = await call(
        service.stub.RotateSftpLoginPassword(
            ingestion_pb2.RotateSftpLoginPasswordRequest(login_id=login_id, password="short"),
            metadata=account.metadata(),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    await service.stub.RotateSftpLoginPassword(
        ingestion_pb2.RotateSftpLoginPasswordRequest(login_id=login_id, password=NEW_PASSWORD),
        metadata=account.metadata(),
    )
    assert await can_sign_in(service, username, password=NEW_PASSWORD)
    assert not await can_sign_in(service, username, password=PASSWORD, source=fresh_source())
    rotated = await published(
        service.js,
        "canopy.ingestion.login.password_rotated",
        lambda e: e.account_id == str(account.id),
    )
    assert NEW_PASSWORD.encode() not in rotated.SerializeToString()


async def test_a_hard_delete_needs_a_disabled_login_a_dry_run_and_its_token(
    service: Service,
) -> None:
    account, zone, login_id, username = await new_login(service)
    request = ingestion_pb2.LoginActionRequest(login_id=login_id)
    plan = await service.stub.PlanSftpLoginDeletion(request, metadata=account.metadata())
    assert not plan.deletable and plan.confirmation_token == ""
    assert "disable it first" in plan.blockers[0]

    async with sftp_client(service.config, username) as sftp:
        await upload(sftp, "customers_waiting.csv", b"1\n")  # received: still to be loaded
    await service.stub.DisableSftpLogin(request, metadata=account.metadata())
    plan = await service.stub.PlanSftpLoginDeletion(request, metadata=account.metadata())
    assert not plan.deletable
    assert any("still being processed" in b for b in plan.blockers)

    # once nothing waits (the file failed to load), the dry run hands out a token
    (file,) = await account.files(zone)
    await publish(
        service,
        "canopy.canonical.load.completed",
        canonical_pb2.LoadCompleted(file_id=file.id, status="failed", reason="bad header"),
        account.id,
    )

    async def deletable() -> None:
        plan = await service.stub.PlanSftpLoginDeletion(request, metadata=account.metadata())
        assert plan.deletable, plan.blockers

    await eventually(deletable)
    plan = await service.stub.PlanSftpLoginDeletion(request, metadata=account.metadata())
    assert any(username in r for r in plan.removes)
    assert any("1 file(s)" in k for k in plan.keeps)

    def delete(token: str, metadata: object = None) -> object:
        return service.stub.DeleteSftpLogin(
            ingestion_pb2.DeleteSftpLoginRequest(login_id=login_id, confirmation=token),
            metadata=metadata or account.metadata(),
        )

    last = plan.confirmation_token[-1]
    tampered = plan.confirmation_token[:-1] + ("1" if last == "0" else "0")
    for bad in ("", "123.abc", tampered):
        assert await call(delete(bad)) == grpc.StatusCode.FAILED_PRECONDITION
    stranger = service.account()
    code = await call(delete(plan.confirmation_token, stranger.metadata()))
    assert code == grpc.StatusCode.NOT_FOUND
    # a change after the dry run voids its token
    await service.stub.EnableSftpLogin(request, metadata=account.metadata())
    await service.stub.DisableSftpLogin(request, metadata=account.metadata())
    assert await call(delete(plan.confirmation_token)) == grpc.StatusCode.FAILED_PRECONDITION

    plan = await service.stub.PlanSftpLoginDeletion(request, metadata=account.metadata())
    deleted = await delete(plan.confirmation_token)
    assert deleted.retired_username == username  # type: ignore[attr-defined]
    code = await call(
        service.stub.GetSftpLogin(
            ingestion_pb2.GetSftpLoginRequest(login_id=login_id), metadata=account.metadata()
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert [f.name for f in await account.files(zone)] == ["customers_waiting.csv"]
    assert not await can_sign_in(service, username, source=fresh_source())
    await published(
        service.js, "canopy.ingestion.login.deleted", lambda e: e.account_id == str(account.id)
    )

    # the username is retired: no login, in this account or another, can take it again
    for owner in (account, service.account()):
        other_zone = await owner.dropzone()
        code = await call(
            service.stub.CreateSftpLogin(
                ingestion_pb2.CreateSftpLoginRequest(
                    dropzone_id=other_zone.id, username=username.upper(), password=PASSWORD
                ),
                metadata=owner.metadata(),
            )
        )
        assert code == grpc.StatusCode.ALREADY_EXISTS


async def test_logins_of_a_zone_are_listed_with_their_state(service: Service) -> None:
    account = service.account()
    zone = await account.dropzone()
    first, second = await account.login(zone), await account.login(zone)
    await service.stub.DisableSftpLogin(
        ingestion_pb2.LoginActionRequest(login_id=second.id), metadata=account.metadata()
    )
    listed = await service.stub.ListSftpLogins(
        ingestion_pb2.ListSftpLoginsRequest(dropzone_id=zone.id), metadata=account.metadata()
    )
    assert [(x.id, x.disabled) for x in listed.logins] == [(first.id, False), (second.id, True)]
    stranger = service.account()
    code = await call(
        service.stub.ListSftpLogins(
            ingestion_pb2.ListSftpLoginsRequest(dropzone_id=zone.id),
            metadata=stranger.metadata(),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
