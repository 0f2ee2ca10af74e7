"""Data keys, permissions, tokens, and what the database shows a session without context."""

import uuid

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from canopy.tenancy.v1 import tenancy_pb2
from canopy.tenancy.v1.tenancy_pb2_grpc import TenancyServiceStub
from services.runtime.context import ContextTokens, generate_context_key
from services.runtime.db import Scope
from services.tenancy.config import TenancyConfig
from services.tenancy.tests.helpers import Calls, unique_slug
from tests.support import caller

DATA_KEYS = ("tenancy.datakeys:use",)


async def test_a_data_key_round_trips_and_is_stored_only_wrapped(
    stub: TenancyServiceStub,
    calls: Calls,
    account: tenancy_pb2.Account,
    tenancy_config: TenancyConfig,
) -> None:
    service = calls.tokens.metadata(
        caller(uuid.UUID(account.id), DATA_KEYS, kind="service", principal_id="service:canonical")
    )
    first = await stub.GetDataKey(tenancy_pb2.GetDataKeyRequest(), metadata=service)
    again = await stub.GetDataKey(tenancy_pb2.GetDataKeyRequest(version=1), metadata=service)
    assert first.version == 1 and len(first.key) == 32
    assert again == first

    other = await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name="Other", slug=unique_slug()),
        metadata=calls.operator(),
    )
    others = await stub.GetDataKey(
        tenancy_pb2.GetDataKeyRequest(), metadata=calls.member(other.id, DATA_KEYS)
    )
    assert others.key != first.key

    engine = create_async_engine(tenancy_config.app_url("tenancy"))
    try:
        async with engine.connect() as conn:
            settings = Scope.account(uuid.UUID(account.id)).settings()
            await conn.execute(
                text("SELECT set_config('app.account_id', :account_id, true)"), settings
            )
            stored = (await conn.execute(text("SELECT wrapped_key FROM tenancy.data_keys"))).all()
    finally:
        await engine.dispose()
    assert len(stored) == 1
    assert first.key not in stored[0].wrapped_key

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetDataKey(tenancy_pb2.GetDataKeyRequest(version=2), metadata=service)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_data_key_needs_an_account_in_the_context(
    stub: TenancyServiceStub, calls: Calls
) -> None:
    nobody = calls.tokens.metadata(caller(None, DATA_KEYS, kind="service"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetDataKey(tenancy_pb2.GetDataKeyRequest(), metadata=nobody)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_missing_permissions_are_refused(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    staff = calls.member(account.id, ("tenancy.tenants:read",))
    attempts = [
        stub.CreateTenant(tenancy_pb2.CreateTenantRequest(name="Nope"), metadata=staff),
        stub.GetDataKey(tenancy_pb2.GetDataKeyRequest(), metadata=staff),
        stub.GetAccount(tenancy_pb2.GetAccountRequest(account=account.id), metadata=staff),
        stub.SuspendAccount(
            tenancy_pb2.SuspendAccountRequest(account_id=account.id), metadata=staff
        ),
        stub.CreateAccount(
            tenancy_pb2.CreateAccountRequest(name="Nope", slug=unique_slug()), metadata=staff
        ),
    ]
    for attempt in attempts:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await attempt
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_calls_without_a_valid_context_token_are_unauthenticated(
    stub: TenancyServiceStub, account: tenancy_pb2.Account
) -> None:
    forged = ContextTokens(generate_context_key()).metadata(
        caller(uuid.UUID(account.id), ["tenancy.tenants:read"])
    )
    for metadata in ((), forged, (("x-canopy-context", "not.a.jwt"),)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListTenants(tenancy_pb2.ListTenantsRequest(), metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_app_role_without_context_sees_no_rows_and_cannot_change_a_slug(
    stub: TenancyServiceStub,
    calls: Calls,
    account: tenancy_pb2.Account,
    tenancy_config: TenancyConfig,
) -> None:
    await stub.CreateTenant(
        tenancy_pb2.CreateTenantRequest(name="North"), metadata=calls.member(account.id)
    )
    engine = create_async_engine(tenancy_config.app_url("tenancy"))
    try:
        async with engine.connect() as conn:
            for table in ("accounts", "data_keys", "tenants", "tenant_mapping_codes"):
                count = await conn.execute(text(f"SELECT count(*) FROM tenancy.{table}"))
                assert count.scalar_one() == 0, table
            await conn.rollback()
            # The lookup function is how the app role finds an account it is not scoped to.
            found = await conn.execute(
                text("SELECT id FROM tenancy.find_account(:ref)"), {"ref": account.slug}
            )
            assert str(found.scalar_one()) == account.id
            await conn.rollback()
            await conn.execute(
                text("SELECT set_config('app.account_id', :account_id, true)"),
                {"account_id": account.id},
            )
            with pytest.raises(DBAPIError, match="permission denied"):
                await conn.execute(
                    text("UPDATE tenancy.accounts SET slug = 'stolen' WHERE id = :id"),
                    {"id": account.id},
                )
    finally:
        await engine.dispose()
