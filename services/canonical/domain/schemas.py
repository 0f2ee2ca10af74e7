"""The canonical schemas the platform ships: typed fields, what is required, what is sensitive."""

import math
import re
from dataclasses import dataclass, field

from services.canonical.domain.errors import UnknownCanonicalSchema

FIELD_TYPES = ("string", "email", "date", "integer", "decimal", "boolean")

# Sensitive values are stored as "v{version}:" + base64(nonce || ciphertext || tag).
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KEY_VERSION = 9999
KEY_VERSION_PREFIX_WIDTH = len(f"v{MAX_KEY_VERSION}:")


def encrypted_width(plaintext_bytes: int) -> int:
    """Characters of base64(nonce || ciphertext || tag) for `plaintext_bytes` of plaintext."""
    return 4 * math.ceil((plaintext_bytes + NONCE_BYTES + TAG_BYTES) / 3)


@dataclass(frozen=True)
class CanonicalField:
    name: str
    type: str
    max_length: int
    required: bool = False
    sensitive: bool = False
    # Closed vocabulary (after value maps): the value must be one of these.
    allowed_values: tuple[str, ...] = ()
    # A pattern the value must match in full, and how to say it does not.
    pattern: str = ""
    pattern_message: str = ""
    minimum: int | None = None
    maximum: int | None = None

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"{self.name}: unknown field type {self.type}")

    @property
    def stored_width(self) -> int:
        """Width of the stored value: the plaintext's, or the encrypted one's with its prefix."""
        if not self.sensitive:
            return self.max_length
        return encrypted_width(self.max_length) + KEY_VERSION_PREFIX_WIDTH

    def matches_pattern(self, value: str) -> bool:
        return not self.pattern or re.fullmatch(self.pattern, value) is not None


@dataclass(frozen=True)
class CanonicalSchema:
    name: str
    version: int
    description: str
    fields: tuple[CanonicalField, ...]
    by_name: dict[str, CanonicalField] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def field_named(self, name: str) -> CanonicalField | None:
        return self.by_name.get(name)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def sensitive_fields(self) -> tuple[CanonicalField, ...]:
        return tuple(f for f in self.fields if f.sensitive)


CUSTOMER = CanonicalSchema(
    name="customer",
    version=1,
    description="A person or organisation that buys from or is served by a tenant.",
    fields=(
        CanonicalField("first_name", "string", 100),
        CanonicalField("last_name", "string", 100, required=True),
        CanonicalField("email", "email", 254, sensitive=True),
        CanonicalField(
            "phone",
            "string",
            32,
            sensitive=True,
            pattern=r"\+?[0-9 ()/.-]{3,32}",
            pattern_message="not a phone number",
        ),
        CanonicalField("date_of_birth", "date", 10, sensitive=True),
        CanonicalField(
            "gender", "string", 7, allowed_values=("female", "male", "other", "unknown")
        ),
        CanonicalField("street", "string", 200),
        CanonicalField("postal_code", "string", 16),
        CanonicalField("city", "string", 100),
        CanonicalField(
            "country",
            "string",
            2,
            pattern=r"[A-Z]{2}",
            pattern_message="not an ISO 3166-1 alpha-2 country code",
        ),
        CanonicalField("customer_since", "date", 10),
    ),
)

VEHICLE = CanonicalSchema(
    name="vehicle",
    version=1,
    description="A vehicle a tenant sold, serviced or holds in stock.",
    fields=(
        CanonicalField(
            "vin",
            "string",
            17,
            required=True,
            sensitive=True,
            pattern=r"[A-HJ-NPR-Z0-9]{17}",
            pattern_message="not a 17-character VIN",
        ),
        CanonicalField("make", "string", 50),
        CanonicalField("model", "string", 100),
        CanonicalField("model_year", "integer", 4, minimum=1886, maximum=2100),
        CanonicalField("registration_number", "string", 20, sensitive=True),
        CanonicalField("first_registration_date", "date", 10),
        CanonicalField("mileage_km", "integer", 9, minimum=0, maximum=999_999_999),
        CanonicalField(
            "fuel_type",
            "string",
            14,
            allowed_values=(
                "petrol",
                "diesel",
                "electric",
                "hybrid",
                "plug_in_hybrid",
                "lpg",
                "cng",
                "hydrogen",
                "other",
            ),
        ),
    ),
)

CANONICAL_SCHEMAS: dict[str, CanonicalSchema] = {s.name: s for s in (CUSTOMER, VEHICLE)}


def canonical_schema(name: str) -> CanonicalSchema:
    try:
        return CANONICAL_SCHEMAS[name]
    except KeyError:
        known = ", ".join(sorted(CANONICAL_SCHEMAS))
        raise UnknownCanonicalSchema(
            f"canonical schema '{name}' does not exist (known: {known})"
        ) from None
