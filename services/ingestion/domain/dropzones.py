"""Drop zones: an account's SFTP landing area, scoped to some tenants, with routing rules."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from services.ingestion.domain.limits import Quota
from services.ingestion.domain.schedule import ArrivalSchedule
from services.ingestion.domain.text import clean_text
from services.runtime.errors import InvalidInput

MAX_NAME_LENGTH = 100
MAX_TENANTS = 1000
MAX_ROUTES = 100
MAX_PATTERN_LENGTH = 255
MAX_SOURCE_SCHEMA_LENGTH = 200


@dataclass(frozen=True)
class Route:
    """Files named like `pattern` (a glob such as `customers_*.csv`) load as `source_schema`."""

    pattern: str
    source_schema: str

    def matches(self, file_name: str) -> bool:
        return fnmatchcase(file_name, self.pattern)


@dataclass(frozen=True)
class DropZone:
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    tenant_ids: tuple[uuid.UUID, ...]
    routes: tuple[Route, ...]
    created_at: datetime
    updated_at: datetime
    quota: Quota = field(default_factory=Quota)
    schedule: ArrivalSchedule | None = None
    schedule_since: datetime | None = None
    # The last deadline this zone was reported late for (each missed window is reported once).
    last_late_deadline: datetime | None = None

    def route_for(self, file_name: str) -> Route | None:
        return route_for(self.routes, file_name)

    def missed_deadline(self, now: datetime, last_received_at: datetime | None) -> datetime | None:
        """The deadline the zone is late for now, if any: its latest expected window saw no
        file, none arrived since, and the window ended after the schedule was set."""
        if self.schedule is None:
            return None
        missed = self.schedule.missed(now, last_received_at)
        if missed is None or (self.schedule_since is not None and missed <= self.schedule_since):
            return None
        return missed


@dataclass(frozen=True)
class DropZoneSpec:
    """A checked request for a new drop zone."""

    name: str
    tenant_ids: tuple[uuid.UUID, ...]
    routes: tuple[Route, ...]


def dropzone_spec(
    *, name: str, tenant_ids: Sequence[uuid.UUID], routes: Sequence[Route]
) -> DropZoneSpec:
    """Check a new drop zone: a name, at least one tenant and at least one well-formed route."""
    name = clean_text(name, field="name", max_length=MAX_NAME_LENGTH)
    tenants = tuple(dict.fromkeys(tenant_ids))
    if not tenants:
        raise InvalidInput("a drop zone needs at least one tenant")
    if len(tenants) > MAX_TENANTS:
        raise InvalidInput(f"a drop zone has at most {MAX_TENANTS} tenants")
    if not routes:
        raise InvalidInput("a drop zone needs at least one route")
    if len(routes) > MAX_ROUTES:
        raise InvalidInput(f"a drop zone has at most {MAX_ROUTES} routes")
    return DropZoneSpec(name=name, tenant_ids=tenants, routes=tuple(map(checked_route, routes)))


def checked_route(route: Route) -> Route:
    pattern = clean_text(route.pattern, field="route pattern", max_length=MAX_PATTERN_LENGTH)
    if "/" in pattern:
        raise InvalidInput(f"route pattern {pattern!r} must match file names, not paths")
    schema = clean_text(
        route.source_schema, field="route source_schema", max_length=MAX_SOURCE_SCHEMA_LENGTH
    )
    return Route(pattern=pattern, source_schema=schema)


def route_for(routes: Sequence[Route], file_name: str) -> Route | None:
    """The first route whose pattern matches the file name (case-sensitive), if any."""
    return next((route for route in routes if route.matches(file_name)), None)
