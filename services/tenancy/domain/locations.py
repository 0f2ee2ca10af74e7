"""Where a tenant is: a postal address, an ISO 3166-1 country and optionally a map position."""

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from services.runtime.errors import InvalidInput
from services.tenancy.domain.events import DomainEvent, LocationSnapshot, TenantLocationChanged

MAX_ADDRESS_LINES = 4
MAX_LINE_LENGTH = 200
MAX_POSTAL_CODE_LENGTH = 20

# ISO 3166-1 alpha-2: the officially assigned codes.
COUNTRY_CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)


def _optional_text(value: str, *, what: str, max_length: int) -> str:
    cleaned = value.strip()
    if len(cleaned) > max_length:
        raise InvalidInput(f"{what} is too long (at most {max_length} characters)")
    return cleaned


def clean_country(value: str) -> str:
    code = value.strip().upper()
    if not code:
        raise InvalidInput("country is required (ISO 3166-1 alpha-2, e.g. DE)")
    if code not in COUNTRY_CODES:
        raise InvalidInput(f"country {value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def clean_address_lines(lines: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The non-blank lines, trimmed; at most four, each at most 200 characters."""
    kept = tuple(
        _optional_text(line, what="an address line", max_length=MAX_LINE_LENGTH) for line in lines
    )
    kept = tuple(line for line in kept if line)
    if len(kept) > MAX_ADDRESS_LINES:
        raise InvalidInput(f"at most {MAX_ADDRESS_LINES} address lines")
    return kept


def clean_position(
    latitude: float | None, longitude: float | None
) -> tuple[float | None, float | None]:
    if (latitude is None) != (longitude is None):
        raise InvalidInput("latitude and longitude go together: give both or neither")
    if latitude is None or longitude is None:
        return None, None
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise InvalidInput("latitude must be between -90 and 90")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise InvalidInput("longitude must be between -180 and 180")
    return latitude, longitude


@dataclass
class TenantLocation:
    account_id: uuid.UUID
    tenant_id: uuid.UUID
    address_lines: tuple[str, ...]
    city: str
    postal_code: str
    region: str
    country: str
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def set(
        cls,
        *,
        account_id: uuid.UUID,
        tenant_id: uuid.UUID,
        address_lines: list[str] | tuple[str, ...],
        city: str,
        postal_code: str,
        region: str,
        country: str,
        latitude: float | None,
        longitude: float | None,
    ) -> "TenantLocation":
        """A tenant's whole location, replacing any earlier one."""
        latitude, longitude = clean_position(latitude, longitude)
        location = cls(
            account_id=account_id,
            tenant_id=tenant_id,
            address_lines=clean_address_lines(address_lines),
            city=_optional_text(city, what="city", max_length=MAX_LINE_LENGTH),
            postal_code=_optional_text(
                postal_code, what="postal_code", max_length=MAX_POSTAL_CODE_LENGTH
            ),
            region=_optional_text(region, what="region", max_length=MAX_LINE_LENGTH),
            country=clean_country(country),
            latitude=latitude,
            longitude=longitude,
        )
        location.events.append(
            TenantLocationChanged(
                account_id=account_id, tenant_id=tenant_id, location=location.snapshot()
            )
        )
        return location

    def snapshot(self) -> LocationSnapshot:
        return LocationSnapshot(
            address_lines=self.address_lines,
            city=self.city,
            postal_code=self.postal_code,
            region=self.region,
            country=self.country,
            latitude=self.latitude,
            longitude=self.longitude,
        )

    def pull_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events


def location_removed(account_id: uuid.UUID, tenant_id: uuid.UUID) -> TenantLocationChanged:
    return TenantLocationChanged(account_id=account_id, tenant_id=tenant_id, location=None)
