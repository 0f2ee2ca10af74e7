"""Account lifecycle through the real gRPC service, PostgreSQL and JetStream."""

import uuid

import grpc
import pytest

from canopy.tenancy.v1 import tenancy_pb2
from canopy.tenancy.v1.tenancy_pb2_grpc import TenancyServiceStub
from services.runtime.events import unpack
from services.tenancy.tests.helpers import Calls, Published, unique_slug
from tests.support import caller


async def test_created_account_is_active_and_announced_on_jetstream(
    stub: TenancyServiceStub, calls: Calls, published: Published
) -> None:
    slug = unique_slug()
    account = await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name=" Acme Motors ", slug=slug, tier="enterprise"),
        metadata=calls.operator(),
    )
    assert uuid.UUID(account.id).version == 7
    assert (account.name, account.slug, account.tier) == ("Acme Motors", slug, "enterprise")
    assert account.status == tenancy_pb2.ACCOUNT_STATUS_ACTIVE
    assert account.created_at.seconds > 0

    event = await published.wait_for("canopy.tenancy.account.created", account.id)
    payload = unpack(event, tenancy_pb2.AccountCreated)
    assert (payload.account_id, payload.slug, payload.tier) == (account.id, slug, "enterprise")
    assert event.actor.kind == "operator"


async def test_tier_defaults_to_standard(stub: TenancyServiceStub, calls: Calls) -> None:
    account = await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name="Plain", slug=unique_slug()),
        metadata=calls.operator(),
    )
    assert account.tier == "standard"


async def test_a_taken_slug_is_refused_with_already_exists(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateAccount(
            tenancy_pb2.CreateAccountRequest(name="Other", slug=account.slug),
            metadata=calls.operator(),
        )
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert account.slug in (refused.value.details() or "")


@pytest.mark.parametrize(
    ("name", "slug", "tier", "complaint"),
    [
        ("Acme", "Acme_Motors", "", "slug"),
        ("Acme", "ab", "", "slug"),
        ("", "fine-slug", "", "name"),
        ("Acme", "fine-slug", "gold", "tier"),
    ],
)
async def test_bad_account_input_is_refused_clearly(
    stub: TenancyServiceStub, calls: Calls, name: str, slug: str, tier: str, complaint: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateAccount(
            tenancy_pb2.CreateAccountRequest(name=name, slug=slug, tier=tier),
            metadata=calls.operator(),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in (refused.value.details() or "")


async def test_gateway_finds_an_account_by_id_or_slug_before_it_knows_the_account(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    gateway = calls.tokens.metadata(caller(None, ["tenancy.accounts:read"], kind="service"))
    by_id = await stub.GetAccount(
        tenancy_pb2.GetAccountRequest(account=account.id), metadata=gateway
    )
    by_slug = await stub.GetAccount(
        tenancy_pb2.GetAccountRequest(account=account.slug.upper()), metadata=gateway
    )
    assert by_id == by_slug == account

    for unknown in (str(uuid.uuid4()), unique_slug("nobody")):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetAccount(tenancy_pb2.GetAccountRequest(account=unknown), metadata=gateway)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_caller_inside_another_account_cannot_look_an_account_up(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account
) -> None:
    other = await stub.CreateAccount(
        tenancy_pb2.CreateAccountRequest(name="Other", slug=unique_slug()),
        metadata=calls.operator(),
    )
    intruder = calls.member(other.id, ("tenancy.accounts:read", "tenancy.accounts:manage"))
    own = await stub.GetAccount(
        tenancy_pb2.GetAccountRequest(account=other.slug), metadata=intruder
    )
    assert own.id == other.id
    for ref in (account.id, account.slug):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetAccount(tenancy_pb2.GetAccountRequest(account=ref), metadata=intruder)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.SuspendAccount(
            tenancy_pb2.SuspendAccountRequest(account_id=account.id), metadata=intruder
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_account_is_suspended_and_reactivated_with_events(
    stub: TenancyServiceStub, calls: Calls, account: tenancy_pb2.Account, published: Published
) -> None:
    operator = calls.operator()
    suspended = await stub.SuspendAccount(
        tenancy_pb2.SuspendAccountRequest(account_id=account.id, reason="unpaid invoice"),
        metadata=operator,
    )
    assert suspended.status == tenancy_pb2.ACCOUNT_STATUS_SUSPENDED
    assert suspended.updated_at.ToDatetime() >= account.updated_at.ToDatetime()
    event = await published.wait_for("canopy.tenancy.account.suspended", account.id)
    assert unpack(event, tenancy_pb2.AccountSuspended).reason == "unpaid invoice"

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.SuspendAccount(
            tenancy_pb2.SuspendAccountRequest(account_id=account.id), metadata=operator
        )
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already suspended" in (again.value.details() or "")

    reactivated = await stub.ReactivateAccount(
        tenancy_pb2.ReactivateAccountRequest(account_id=account.id), metadata=operator
    )
    assert reactivated.status == tenancy_pb2.ACCOUNT_STATUS_ACTIVE
    await published.wait_for("canopy.tenancy.account.reactivated", account.id)
    found = await stub.GetAccount(
        tenancy_pb2.GetAccountRequest(account=account.id), metadata=operator
    )
    assert found.status == tenancy_pb2.ACCOUNT_STATUS_ACTIVE


async def test_suspending_an_unknown_or_malformed_account_id_is_refused(
    stub: TenancyServiceStub, calls: Calls
) -> None:
    for account_id, status in (
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        ("acme", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SuspendAccount(
                tenancy_pb2.SuspendAccountRequest(account_id=account_id), metadata=calls.operator()
            )
        assert refused.value.code() == status
