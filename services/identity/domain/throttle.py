"""Sign-in throttling per email: after 5 failures the email is locked, for longer each time."""

from dataclasses import dataclass
from datetime import datetime, timedelta

FAILURES_BEFORE_LOCK = 5
FIRST_LOCK = timedelta(minutes=1)
LONGEST_LOCK = timedelta(hours=1)


@dataclass(frozen=True)
class Throttle:
    """The failed sign-ins of one email since its last success."""

    failures: int = 0
    lockouts: int = 0
    locked_until: datetime | None = None

    def locked_for(self, now: datetime) -> int:
        """Seconds left on the lock (0: not locked)."""
        if self.locked_until is None or self.locked_until <= now:
            return 0
        return max(1, int((self.locked_until - now).total_seconds() + 0.999))


def lock_duration(lockouts: int) -> timedelta:
    """The n-th lock (0-based) lasts 1 min, doubling each time, at most 1 h."""
    return min(FIRST_LOCK * (2 ** min(lockouts, 16)), LONGEST_LOCK)


def after_failure(state: Throttle, now: datetime) -> tuple[Throttle, timedelta | None]:
    """The state after one more failure, and the lock it starts (None: not locked yet)."""
    failures = state.failures + 1
    if failures < FAILURES_BEFORE_LOCK:
        return Throttle(failures, state.lockouts, state.locked_until), None
    duration = lock_duration(state.lockouts)
    return Throttle(0, state.lockouts + 1, now + duration), duration
