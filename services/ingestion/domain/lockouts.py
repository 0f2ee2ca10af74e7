"""Sign-in failures: after too many in a window, a login or address is locked for a while,
longer each time it happens again."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutPolicy:
    """`max_failures` failures within `window` lock for `lock`, doubled for every lockout
    in a row (up to `max_lock`); a successful sign-in forgets it all."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    max_lock: timedelta = timedelta(days=1)
    # Each failure in the window delays the answer by this much more (up to `max_delay`).
    delay_step: timedelta = timedelta(milliseconds=500)
    max_delay: timedelta = timedelta(seconds=5)

    def lock_for(self, lockouts: int) -> timedelta:
        """How long the `lockouts`-th lockout in a row lasts (1 is the first)."""
        return min(self.lock * (2 ** max(lockouts - 1, 0)), self.max_lock)

    def delay_for(self, failed_attempts: int) -> timedelta:
        return min(self.delay_step * failed_attempts, self.max_delay)


@dataclass(frozen=True)
class FailureState:
    """Failed sign-ins of one login or one source address."""

    failed_attempts: int = 0
    failures_since: datetime | None = None
    locked_until: datetime | None = None
    lockouts: int = 0

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def after_failure(self, now: datetime, policy: LockoutPolicy) -> "FailureState":
        """The state after one more failure; locked when it makes `max_failures`."""
        if self.failures_since is None or now - self.failures_since > policy.window:
            state = replace(self, failed_attempts=1, failures_since=now)
        else:
            state = replace(self, failed_attempts=self.failed_attempts + 1)
        if state.failed_attempts < policy.max_failures:
            return state
        lockouts = self.lockouts + 1
        return FailureState(
            failed_attempts=0,
            failures_since=None,
            locked_until=now + policy.lock_for(lockouts),
            lockouts=lockouts,
        )

    def locks_now(self, before: "FailureState", now: datetime) -> bool:
        """Whether this state is a lockout that `before` was not."""
        return self.is_locked(now) and self.lockouts > before.lockouts


CLEAR = FailureState()
