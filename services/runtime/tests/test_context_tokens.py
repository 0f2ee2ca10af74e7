"""Context tokens: what the gateway signs is what a service sees; anything else is refused."""

import time
import uuid

import jwt
import pytest

from services.runtime.context import CallContext, ContextTokens, generate_context_key
from services.runtime.errors import Forbidden, Unauthenticated


def test_round_trip_keeps_every_claim() -> None:
    tokens = ContextTokens(generate_context_key())
    tenant = uuid.uuid4()
    ctx = CallContext(
        principal_id="u1",
        principal_kind="user",
        account_id=uuid.uuid4(),
        permissions=frozenset({"canonical.records:read"}),
        tenant_ids=frozenset({tenant}),
        source_address="10.0.0.7",
    )
    seen = tokens.verify(tokens.sign(ctx), ctx.correlation_id)
    assert seen == ctx


def test_the_correlation_id_travels_beside_the_token() -> None:
    tokens = ContextTokens(generate_context_key())
    first = CallContext("u1", "user", None, frozenset({"a.b:read"}), correlation_id="req-1")
    second = CallContext("u1", "user", None, frozenset({"a.b:read"}), correlation_id="req-2")
    (key, token_1), (_, cid_1) = tokens.metadata(first)
    (_, token_2), (_, cid_2) = tokens.metadata(second)
    assert token_1 == token_2  # one signature serves the caller's requests
    assert (cid_1, cid_2) == ("req-1", "req-2")
    assert tokens.verify(token_2, cid_2).correlation_id == "req-2"
    assert tokens.verify(token_2).correlation_id not in ("", "req-1", "req-2")
    other = CallContext("u1", "user", None, frozenset({"a.b:write"}))
    assert tokens.metadata(other)[0][1] != token_1  # other claims, another token


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    clock = Clock()
    tokens = ContextTokens(generate_context_key(), clock=clock)
    ctx = CallContext("u1", "user", None, frozenset({"a.b:read"}))
    token = tokens.metadata(ctx)[0][1]
    assert tokens.verify(token).principal_id == "u1"  # now remembered
    clock.now += 61
    with pytest.raises(Unauthenticated):
        tokens.verify(token)
    fresh = tokens.metadata(ctx)[0][1]  # the signer does not hand out the stale one either
    assert fresh != token and tokens.verify(fresh).principal_id == "u1"


def test_a_forged_token_is_refused_even_beside_a_remembered_one() -> None:
    mine, theirs = ContextTokens(generate_context_key()), ContextTokens(generate_context_key())
    ctx = CallContext("u1", "user", None, frozenset({"a.b:read"}))
    good = mine.metadata(ctx)[0][1]
    mine.verify(good)
    header, claims, _ = good.split(".")
    forged_signature = theirs.metadata(ctx)[0][1].split(".")[2]
    with pytest.raises(Unauthenticated):
        mine.verify(f"{header}.{claims}.{forged_signature}")


def test_token_signed_by_another_key_is_refused() -> None:
    mine, theirs = ContextTokens(generate_context_key()), ContextTokens(generate_context_key())
    forged = theirs.sign(CallContext("u1", "user", None, frozenset({"x.y:z"})))
    with pytest.raises(Unauthenticated):
        mine.verify(forged)


def test_expired_token_is_refused() -> None:
    tokens = ContextTokens(generate_context_key())
    expired = tokens.sign(CallContext("u1", "user", None), lifetime=-1)
    with pytest.raises(Unauthenticated):
        tokens.verify(expired)


def test_unsigned_token_is_refused() -> None:
    tokens = ContextTokens(generate_context_key())
    unsigned = jwt.encode(
        {"iss": "canopy", "sub": "u1", "iat": int(time.time()), "exp": int(time.time()) + 60},
        key=None,
        algorithm="none",
    )
    with pytest.raises(Unauthenticated):
        tokens.verify(unsigned)


def test_missing_permission_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        CallContext("u1", "user", None, frozenset({"a.b:read"})).require("a.b:write")
