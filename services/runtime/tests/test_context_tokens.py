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
    seen = tokens.verify(tokens.sign(ctx))
    assert seen == ctx


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
