"""When a drop zone expects its files: "daily by 06:00" in a time zone, and when it is late."""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.runtime.errors import InvalidInput

TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class ArrivalSchedule:
    """A file is expected every day by `expected_by` local time in `timezone`."""

    expected_by: time
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def deadline_on(self, day: datetime) -> datetime:
        """The deadline of the local calendar day `day` falls on."""
        local = day.astimezone(self.zone)
        return datetime.combine(local.date(), self.expected_by, tzinfo=self.zone)

    def latest_deadline(self, now: datetime) -> datetime:
        """The most recent deadline at or before `now`."""
        today = self.deadline_on(now)
        return today if today <= now else self.deadline_on(now - timedelta(days=1))

    def next_deadline(self, now: datetime) -> datetime:
        today = self.deadline_on(now)
        return today if today > now else self.deadline_on(now + timedelta(days=1))

    def missed(self, now: datetime, last_received_at: datetime | None) -> datetime | None:
        """The latest deadline whose window (the day before it) saw no file, when no file has
        arrived since either; None when the zone is on time."""
        deadline = self.latest_deadline(now)
        window_start = self.latest_deadline(deadline - timedelta(seconds=1))
        if last_received_at is not None and last_received_at > window_start:
            return None
        return deadline


def arrival_schedule(expected_by: str, timezone: str) -> ArrivalSchedule:
    """Check "HH:MM" and an IANA time zone name."""
    found = TIME_OF_DAY.match(expected_by.strip())
    if not found:
        raise InvalidInput("expected_by must be a time of day as HH:MM (24-hour)")
    name = timezone.strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}") from None
    return ArrivalSchedule(time(int(found.group(1)), int(found.group(2))), name)
