"""Request rate limits per account and per API key: token buckets in this gateway process.

Each bucket holds up to `burst` requests and refills at `rate` per second. Limits are per
process: N gateway replicas allow up to N times the rate (set the rate per replica).
"""

import math
import time
from collections.abc import Callable, Hashable

from gateway.problems import Problem


class TokenBuckets:
    """One bucket per key; full (idle) buckets are dropped when the table grows."""

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._max = max_entries
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: Hashable) -> float:
        """Take one request's token: 0.0 when allowed, else the seconds until one is there."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self._max:
                self._evict(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        full = [
            k
            for k, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self._max:
            del self._buckets[next(iter(self._buckets))]


class RateLimits:
    """The account's and the API key's buckets; a 429 problem with Retry-After when empty."""

    def __init__(self, *, accounts: TokenBuckets, api_keys: TokenBuckets) -> None:
        self.accounts = accounts
        self.api_keys = api_keys

    def check(self, *, account_id: str, api_key_id: str | None) -> None:
        if api_key_id:
            wait = self.api_keys.take(api_key_id)
            if wait:
                raise too_many(wait, "this API key")
        wait = self.accounts.take(account_id)
        if wait:
            raise too_many(wait, "this account")


def too_many(wait: float, who: str) -> Problem:
    seconds = max(1, math.ceil(wait))
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"{who} is over its request rate; retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
