"""Drop zones and SFTP logins through the real gRPC API, PostgreSQL and JetStream."""

import uuid

import grpc
import pytest
from sqlalchemy import func, select

from canopy.ingestion.v1 import ingestion_pb2
from services.ingestion.adapters.db import tables
from services.ingestion.bootstrap import SCHEMA
from services.ingestion.tests.helpers import PASSWORD, Service, published, unique_username
from services.runtime.db import Database, Scope
from services.runtime.events import unpack


async def test_a_created_dropzone_can_be_read_back_and_is_announced(service: Service) -> None:
    account = service.account()
    zone = await account.dropzone(routes=[("customers_*.csv", "dms_customers"), ("*.csv", "x")])
    assert zone.account_id == str(account.id)
    assert list(zone.tenant_ids) == [str(account.tenant_id)]
    assert [(r.pattern, r.source_schema) for r in zone.routes] == [
        ("customers_*.csv", "dms_customers"),
        ("*.csv", "x"),
    ]
    got = await service.stub.GetDropZone(
        ingestion_pb2.GetDropZoneRequest(dropzone_id=zone.id), metadata=account.metadata()
    )
    assert got == zone
    event = await published(
        service.js, "canopy.ingestion.dropzone.created", lambda e: e.account_id == str(account.id)
    )
    payload = unpack(event, ingestion_pb2.DropZoneCreated)
    assert isinstance(payload, ingestion_pb2.DropZoneCreated)
    assert (payload.dropzone_id, payload.name) == (zone.id, zone.name)
    assert event.actor.kind == "user"


async def test_a_dropzone_for_an_unknown_tenant_is_refused_naming_it(service: Service) -> None:
    account = service.account()
    stranger = uuid.uuid4()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateDropZone(
            ingestion_pb2.CreateDropZoneRequest(
                name="uploads",
                tenant_ids=[str(account.tenant_id), str(stranger)],
                routes=[ingestion_pb2.Route(pattern="*.csv", source_schema="x")],
            ),
            metadata=account.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(stranger) in (refused.value.details() or "")


@pytest.mark.parametrize(
    "request_fields",
    [
        {"name": "", "routes": [ingestion_pb2.Route(pattern="*.csv", source_schema="x")]},
        {"name": "uploads", "routes": []},
        {"name": "uploads", "routes": [ingestion_pb2.Route(pattern="*.csv")]},
    ],
)
async def test_incomplete_dropzones_are_refused(service: Service, request_fields: dict) -> None:
    account = service.account()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateDropZone(
            ingestion_pb2.CreateDropZoneRequest(
                tenant_ids=[str(account.tenant_id)], **request_fields
            ),
            metadata=account.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_dropzone_without_tenants_or_with_a_bad_id_is_refused(service: Service) -> None:
    account = service.account()
    for tenant_ids in ([], ["not-a-uuid"]):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.CreateDropZone(
                ingestion_pb2.CreateDropZoneRequest(
                    name="uploads",
                    tenant_ids=tenant_ids,
                    routes=[ingestion_pb2.Route(pattern="*.csv", source_schema="x")],
                ),
                metadata=account.metadata(),
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_dropzone_names_are_unique_in_an_account_only(service: Service) -> None:
    first, second = service.account(), service.account()

    def request(account_tenant: uuid.UUID) -> ingestion_pb2.CreateDropZoneRequest:
        return ingestion_pb2.CreateDropZoneRequest(
            name="Main uploads",
            tenant_ids=[str(account_tenant)],
            routes=[ingestion_pb2.Route(pattern="*.csv", source_schema="x")],
        )

    await service.stub.CreateDropZone(request(first.tenant_id), metadata=first.metadata())
    await service.stub.CreateDropZone(request(second.tenant_id), metadata=second.metadata())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateDropZone(request(first.tenant_id), metadata=first.metadata())
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_dropzones_are_listed_in_pages_of_the_callers_account(service: Service) -> None:
    account, other = service.account(), service.account()
    created = [await account.dropzone() for _ in range(3)]
    await other.dropzone()
    first = await service.stub.ListDropZones(
        ingestion_pb2.ListDropZonesRequest(page_size=2), metadata=account.metadata()
    )
    assert first.next_page_token
    rest = await service.stub.ListDropZones(
        ingestion_pb2.ListDropZonesRequest(page_size=2, page_token=first.next_page_token),
        metadata=account.metadata(),
    )
    assert rest.next_page_token == ""
    assert [z.id for z in [*first.dropzones, *rest.dropzones]] == [z.id for z in created]


async def test_another_account_cannot_see_a_dropzone(service: Service) -> None:
    owner, stranger = service.account(), service.account()
    zone = await owner.dropzone()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.GetDropZone(
            ingestion_pb2.GetDropZoneRequest(dropzone_id=zone.id), metadata=stranger.metadata()
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await service.stub.ListDropZones(
        ingestion_pb2.ListDropZonesRequest(), metadata=stranger.metadata()
    )
    assert zone.id not in [z.id for z in listed.dropzones]


async def test_a_login_is_created_for_a_dropzone_and_announced_without_its_password(
    service: Service,
) -> None:
    account = service.account()
    zone = await account.dropzone()
    username = unique_username()
    login = await service.stub.CreateSftpLogin(
        ingestion_pb2.CreateSftpLoginRequest(
            dropzone_id=zone.id, username=username.upper(), password=PASSWORD
        ),
        metadata=account.metadata(),
    )
    assert (login.dropzone_id, login.username) == (zone.id, username)
    event = await published(
        service.js, "canopy.ingestion.login.created", lambda e: e.account_id == str(account.id)
    )
    payload = unpack(event, ingestion_pb2.SftpLoginCreated)
    assert isinstance(payload, ingestion_pb2.SftpLoginCreated)
    assert (payload.login_id, payload.username) == (login.id, username)
    assert PASSWORD.encode() not in event.SerializeToString()


async def test_usernames_are_unique_across_accounts_whatever_their_case(service: Service) -> None:
    first, second = service.account(), service.account()
    username = unique_username()
    await service.stub.CreateSftpLogin(
        ingestion_pb2.CreateSftpLoginRequest(
            dropzone_id=(await first.dropzone()).id, username=username, password=PASSWORD
        ),
        metadata=first.metadata(),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateSftpLogin(
            ingestion_pb2.CreateSftpLoginRequest(
                dropzone_id=(await second.dropzone()).id,
                username=username.upper(),
                password=PASSWORD,
            ),
            metadata=second.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_login_for_another_accounts_dropzone_is_not_found(service: Service) -> None:
    owner, stranger = service.account(), service.account()
    zone = await owner.dropzone()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateSftpLogin(
            ingestion_pb2.CreateSftpLoginRequest(
                dropzone_id=zone.id, username=unique_username(), password=PASSWORD
            ),
            metadata=stranger.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("username", "password"),
    [("ab", PASSWORD), ("bad user", PASSWORD), (None, "too-short"), (None, "")],
)
async def test_bad_usernames_and_short_passwords_are_refused(
    service: Service, username: str | None, password: str
) -> None:
    account = service.account()
    zone = await account.dropzone()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.CreateSftpLogin(
            ingestion_pb2.CreateSftpLoginRequest(
                dropzone_id=zone.id, username=username or unique_username(), password=password
            ),
            metadata=account.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not password or password not in (refused.value.details() or "")


async def test_calls_need_their_permission_and_a_context_token(service: Service) -> None:
    account = service.account()
    request = ingestion_pb2.CreateDropZoneRequest(
        name="uploads",
        tenant_ids=[str(account.tenant_id)],
        routes=[ingestion_pb2.Route(pattern="*.csv", source_schema="x")],
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await service.stub.CreateDropZone(
            request, metadata=account.metadata(["ingestion.dropzones:read"])
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await service.stub.ListFiles(ingestion_pb2.ListFilesRequest())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_app_role_without_a_context_sees_no_rows(service: Service) -> None:
    account = service.account()
    zone = await account.dropzone()
    await account.login(zone)
    db = Database(service.config.app_url(SCHEMA), pool_size=1)
    try:
        async with db.transaction(Scope.account(account.id)) as session:
            assert await session.scalar(select(func.count()).select_from(tables.sftp_logins)) == 1
            password_hash = await session.scalar(select(tables.sftp_logins.c.password_hash))
            assert password_hash.startswith("$argon2id$")
        async with db.transaction(Scope.nothing()) as session:
            for table in (tables.dropzones, tables.sftp_logins, tables.files):
                assert await session.scalar(select(func.count()).select_from(table)) == 0
    finally:
        await db.dispose()
