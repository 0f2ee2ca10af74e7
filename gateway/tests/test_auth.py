"""Bearer token verification, the JWKS cache and the small TTL cache, without a network."""

import asyncio

import pytest

from canopy.identity.v1 import identity_pb2
from gateway.accounts import Membership, TtlCache
from gateway.auth import Authenticator, JwksCache, bearer_token, keys_of
from gateway.problems import Problem
from gateway.tests.doubles import SigningKey


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Identity:
    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0

    async def jwks(self) -> identity_pb2.Jwks:
        self.fetches += 1
        await asyncio.sleep(0)
        return identity_pb2.Jwks(keys=[k.jwk() for k in self.keys])


async def test_keys_are_cached_until_their_ttl() -> None:
    clock, identity = Clock(), Identity(SigningKey("k1"))
    cache = JwksCache(identity.jwks, ttl=60, refetch_floor=1, clock=clock)
    assert set(await cache.keys()) == {"k1"}
    await cache.keys()
    assert identity.fetches == 1
    clock.now += 61
    await cache.keys()
    assert identity.fetches == 2


async def test_an_unknown_kid_refetches_once_and_not_too_often() -> None:
    clock, identity = Clock(), Identity(SigningKey("k1"))
    cache = JwksCache(identity.jwks, ttl=300, refetch_floor=5, clock=clock)
    await cache.keys()
    identity.keys.append(SigningKey("k2"))
    assert "k2" not in await cache.keys_knowing("k2")  # within the floor: no refetch
    assert identity.fetches == 1
    clock.now += 6
    results = await asyncio.gather(*(cache.keys_knowing("k2") for _ in range(5)))
    assert all("k2" in keys for keys in results)
    assert identity.fetches == 2  # concurrent refetches share one call


async def test_authenticator_accepts_a_good_token_and_refuses_the_rest() -> None:
    key = SigningKey("k1")
    authenticator = Authenticator(JwksCache(Identity(key).jwks, ttl=60, refetch_floor=0))
    principal = await authenticator.authenticate(f"Bearer {key.token('user-1')}")
    assert (principal.id, principal.kind) == ("user-1", "user")
    bad = [
        None,
        "Token abc",
        "Bearer abc",
        f"Bearer {key.token('u', expires_in=-1)}",
        f"Bearer {key.token('u', audience='other')}",
        f"Bearer {key.token('u', kid='unknown')}",
        f"Bearer {SigningKey('k1').token('u')}",
    ]
    for header in bad:
        with pytest.raises(Problem) as raised:
            await authenticator.authenticate(header)
        assert raised.value.status == 401, header


async def test_a_verified_token_is_remembered_only_while_it_and_its_key_are_valid() -> None:
    key = SigningKey("k1")
    identity, jwks_clock = Identity(key), Clock()
    authenticator = Authenticator(
        JwksCache(identity.jwks, ttl=60, refetch_floor=0, clock=jwks_clock)
    )
    token = key.token("user-1")
    first = await authenticator.authenticate(f"Bearer {token}")
    assert await authenticator.authenticate(f"Bearer {token}") == first
    # Another signature on the same claims is not the remembered token.
    forged = token.rsplit(".", 1)[0] + "." + SigningKey("k1").token("user-1").rsplit(".", 1)[1]
    with pytest.raises(Problem):
        await authenticator.authenticate(f"Bearer {forged}")
    # Once identity stops publishing the key, tokens it signed stop verifying.
    identity.keys = [SigningKey("k2")]
    jwks_clock.now += 61
    with pytest.raises(Problem) as unknown:
        await authenticator.authenticate(f"Bearer {token}")
    assert unknown.value.status == 401


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    key = SigningKey("k1")
    authenticator = Authenticator(JwksCache(Identity(key).jwks, ttl=60, refetch_floor=0))
    token = key.token("user-1", expires_in=1)
    await authenticator.authenticate(f"Bearer {token}")
    await asyncio.sleep(1.1)
    with pytest.raises(Problem) as expired:
        await authenticator.authenticate(f"Bearer {token}")
    assert expired.value.status == 401 and "expired" in str(expired.value)


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"


def test_only_ed25519_signing_keys_are_used() -> None:
    good = SigningKey("k1").jwk()
    rsa = identity_pb2.Jwk(kty="RSA", kid="r1")
    encryption = identity_pb2.Jwk(kty="OKP", crv="Ed25519", x=good.x, kid="e1", use="enc")
    assert set(keys_of(identity_pb2.Jwks(keys=[good, rsa, encryption]))) == {"k1"}


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(2.0, max_entries=3, clock=clock)
    cache.put("a", 1)
    assert cache.get("a") == 1
    clock.now += 2
    assert cache.get("a") is None
    for name in "bcde":
        cache.put(name, 1)
    assert cache.get("b") is None and cache.get("e") == 1


def test_x_tenant_narrows_a_membership() -> None:
    import uuid

    tenant, other = uuid.uuid4(), uuid.uuid4()
    wide = Membership(uuid.uuid4(), "acme", frozenset({"p"}), None)
    assert wide.narrowed_to(str(tenant)).tenant_ids == {tenant}
    assert wide.narrowed_to(None) is wide
    narrow = Membership(uuid.uuid4(), "acme", frozenset({"p"}), frozenset({tenant}))
    with pytest.raises(Problem) as raised:
        narrow.narrowed_to(str(other))
    assert raised.value.status == 403
    with pytest.raises(Problem):
        narrow.narrowed_to("not-a-uuid")
