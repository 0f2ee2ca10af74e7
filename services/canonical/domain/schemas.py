"""The canonical schemas the platform ships: typed fields, what is required, what is sensitive."""

import math
import re
from dataclasses import dataclass, field

from services.canonical.domain.errors import UnknownCanonicalSchema

FIELD_TYPES = ("string", "email", "date", "datetime", "integer", "decimal", "boolean")

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
    # Exact search allowed: by a keyed blind index when sensitive, by value otherwise.
    searchable: bool = False

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

    @property
    def blind_indexed_fields(self) -> tuple[CanonicalField, ...]:
        """Sensitive fields people search by exact value, through the blind index."""
        return tuple(f for f in self.fields if f.sensitive and f.searchable)


COUNTRY_PATTERN = (r"[A-Z]{2}", "not an ISO 3166-1 alpha-2 country code")
CURRENCY_PATTERN = (r"[A-Z]{3}", "not an ISO 4217 currency code")
AMOUNT_WIDTH = 24
DATETIME_WIDTH = 20  # 2026-11-21T10:00:00Z


def _country(name: str = "country", **kwargs: bool) -> CanonicalField:
    pattern, message = COUNTRY_PATTERN
    return CanonicalField(name, "string", 2, pattern=pattern, pattern_message=message, **kwargs)


def _currency(required: bool = True) -> CanonicalField:
    pattern, message = CURRENCY_PATTERN
    return CanonicalField(
        "currency", "string", 3, required=required, pattern=pattern, pattern_message=message
    )


def _amount(name: str, required: bool = False) -> CanonicalField:
    return CanonicalField(name, "decimal", AMOUNT_WIDTH, required=required)


def _moment(name: str, required: bool = False) -> CanonicalField:
    return CanonicalField(name, "datetime", DATETIME_WIDTH, required=required)


def _reference(name: str, required: bool = False) -> CanonicalField:
    """The id of another record in the customer's system (its source id)."""
    return CanonicalField(name, "string", 100, required=required)


def _one_of(name: str, width: int, *values: str, required: bool = False) -> CanonicalField:
    return CanonicalField(name, "string", width, required=required, allowed_values=values)


PHONE = dict(pattern=r"\+?[0-9 ()/.-]{3,32}", pattern_message="not a phone number")
IBAN = dict(pattern=r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", pattern_message="not an IBAN")

CUSTOMER = CanonicalSchema(
    name="customer",
    version=1,
    description="A person or organisation that buys from or is served by a tenant.",
    fields=(
        CanonicalField("first_name", "string", 100),
        CanonicalField("last_name", "string", 100, required=True),
        CanonicalField("email", "email", 254, sensitive=True, searchable=True),
        CanonicalField("phone", "string", 32, sensitive=True, searchable=True, **PHONE),
        CanonicalField("date_of_birth", "date", 10, sensitive=True),
        _one_of("gender", 7, "female", "male", "other", "unknown"),
        CanonicalField("street", "string", 200),
        CanonicalField("postal_code", "string", 16),
        CanonicalField("city", "string", 100),
        _country(),
        CanonicalField("customer_since", "date", 10),
        CanonicalField("salutation", "string", 20),
        CanonicalField("company_name", "string", 200),
        CanonicalField("mobile_phone", "string", 32, sensitive=True, searchable=True, **PHONE),
        CanonicalField("tax_id", "string", 32, sensitive=True),
        CanonicalField(
            "preferred_language",
            "string",
            2,
            pattern=r"[a-z]{2}",
            pattern_message="not an ISO 639-1 language code",
        ),
        CanonicalField("marketing_consent", "boolean", 5),
        _one_of("customer_type", 8, "private", "business"),
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
            searchable=True,
            pattern=r"[A-HJ-NPR-Z0-9]{17}",
            pattern_message="not a 17-character VIN",
        ),
        CanonicalField("make", "string", 50),
        CanonicalField("model", "string", 100),
        CanonicalField("model_year", "integer", 4, minimum=1886, maximum=2100),
        CanonicalField("registration_number", "string", 20, sensitive=True, searchable=True),
        CanonicalField("first_registration_date", "date", 10),
        CanonicalField("mileage_km", "integer", 9, minimum=0, maximum=999_999_999),
        _one_of(
            "fuel_type",
            14,
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
        CanonicalField("variant", "string", 100),
        CanonicalField("body_type", "string", 30),
        CanonicalField("color", "string", 50),
        _one_of("transmission", 9, "manual", "automatic", "other"),
        CanonicalField("engine_power_kw", "integer", 5, minimum=0, maximum=10_000),
        _one_of("condition", 11, "new", "used", "demo", "pre_owned"),
        CanonicalField("stock_number", "string", 50),
        _reference("owner_customer_id"),
        CanonicalField("last_service_date", "date", 10),
        _amount("list_price"),
        _currency(required=False),
    ),
)

ADDRESS = CanonicalSchema(
    name="address",
    version=1,
    description="A postal address of a customer (home, billing, delivery) or a site.",
    fields=(
        _reference("customer_id"),
        _one_of("address_type", 8, "home", "billing", "delivery", "work", "other"),
        CanonicalField("line1", "string", 200, required=True, sensitive=True),
        CanonicalField("line2", "string", 200, sensitive=True),
        CanonicalField("postal_code", "string", 16),
        CanonicalField("city", "string", 100, required=True),
        CanonicalField("region", "string", 100),
        _country(required=True),
        CanonicalField("valid_from", "date", 10),
        CanonicalField("valid_to", "date", 10),
    ),
)

ORDER = CanonicalSchema(
    name="order",
    version=1,
    description="A customer's order: a vehicle sale, a service job, a parts or shop order.",
    fields=(
        CanonicalField("order_number", "string", 64, required=True),
        _reference("customer_id"),
        CanonicalField("customer_email", "email", 254, sensitive=True, searchable=True),
        _moment("ordered_at", required=True),
        _one_of(
            "status",
            10,
            "draft",
            "open",
            "confirmed",
            "fulfilled",
            "invoiced",
            "cancelled",
            "returned",
            required=True,
        ),
        _one_of("channel", 8, "store", "online", "phone", "marketplace", "other"),
        _currency(),
        _amount("total_amount", required=True),
        _amount("tax_amount"),
        _amount("discount_amount"),
        _amount("shipping_amount"),
        CanonicalField("item_count", "integer", 9, minimum=0, maximum=999_999_999),
        _reference("vehicle_id"),
        CanonicalField("invoice_number", "string", 64),
        _country("shipping_country"),
    ),
)

PAYMENT_METHODS = (
    "card",
    "bank_transfer",
    "direct_debit",
    "cash",
    "wallet",
    "financing",
    "leasing",
    "voucher",
    "other",
)

PAYMENT = CanonicalSchema(
    name="payment",
    version=1,
    description="Money received for an order, as the payment provider or bank reports it.",
    fields=(
        CanonicalField("payment_reference", "string", 100, required=True),
        _reference("order_id"),
        _reference("customer_id"),
        _amount("amount", required=True),
        _currency(),
        _one_of("method", 13, *PAYMENT_METHODS),
        _one_of(
            "status",
            10,
            "pending",
            "authorised",
            "captured",
            "failed",
            "cancelled",
            "refunded",
            required=True,
        ),
        _moment("paid_at"),
        CanonicalField("provider", "string", 50),
        CanonicalField(
            "card_last4",
            "string",
            4,
            sensitive=True,
            pattern=r"[0-9]{4}",
            pattern_message="not the last four digits of a card",
        ),
        CanonicalField("card_brand", "string", 20),
        CanonicalField("iban", "string", 34, sensitive=True, searchable=True, **IBAN),
        CanonicalField("payer_name", "string", 200, sensitive=True),
        _amount("fee_amount"),
    ),
)

REFUND = CanonicalSchema(
    name="refund",
    version=1,
    description="Money paid back on a payment, in part or in full.",
    fields=(
        CanonicalField("refund_reference", "string", 100, required=True),
        _reference("payment_id", required=True),
        _reference("order_id"),
        _amount("amount", required=True),
        _currency(),
        _one_of(
            "reason",
            21,
            "customer_request",
            "duplicate",
            "fraudulent",
            "product_returned",
            "service_not_rendered",
            "other",
        ),
        _one_of("status", 9, "pending", "succeeded", "failed", "cancelled", required=True),
        _moment("refunded_at"),
        CanonicalField("iban", "string", 34, sensitive=True, searchable=True, **IBAN),
    ),
)

PAYOUT = CanonicalSchema(
    name="payout",
    version=1,
    description="A settlement from a payment provider to the tenant's bank account;"
    " its lines are payout_line records.",
    fields=(
        CanonicalField("payout_reference", "string", 100, required=True),
        CanonicalField("provider", "string", 50),
        _amount("amount", required=True),
        _currency(),
        _amount("fee_amount"),
        _one_of("status", 10, "pending", "in_transit", "paid", "failed", "cancelled"),
        CanonicalField("arrival_date", "date", 10),
        CanonicalField("bank_account_iban", "string", 34, sensitive=True, searchable=True, **IBAN),
        CanonicalField("statement_descriptor", "string", 100),
    ),
)

PAYOUT_LINE = CanonicalSchema(
    name="payout_line",
    version=1,
    description="One line of a payout: the payment, refund, fee or adjustment it settles.",
    fields=(
        _reference("payout_id", required=True),
        CanonicalField("line_number", "integer", 9, minimum=1, maximum=999_999_999),
        _one_of(
            "line_type", 10, "payment", "refund", "fee", "dispute", "adjustment", required=True
        ),
        _reference("payment_id"),
        _reference("refund_id"),
        _amount("gross_amount", required=True),
        _amount("fee_amount"),
        _amount("net_amount"),
        _currency(),
        CanonicalField("description", "string", 200),
    ),
)

DISPUTE = CanonicalSchema(
    name="dispute",
    version=1,
    description="A chargeback or inquiry a customer raised with their bank about a payment.",
    fields=(
        CanonicalField("dispute_reference", "string", 100, required=True),
        _reference("payment_id", required=True),
        _amount("amount", required=True),
        _currency(),
        _one_of(
            "reason",
            21,
            "fraudulent",
            "duplicate",
            "product_not_received",
            "product_unacceptable",
            "credit_not_processed",
            "subscription_canceled",
            "general",
            "other",
        ),
        _one_of(
            "status",
            22,
            "warning_needs_response",
            "needs_response",
            "under_review",
            "won",
            "lost",
            "closed",
            required=True,
        ),
        _moment("opened_at", required=True),
        _moment("evidence_due_by"),
        CanonicalField("cardholder_name", "string", 200, sensitive=True),
    ),
)

CANONICAL_SCHEMAS: dict[str, CanonicalSchema] = {
    s.name: s
    for s in (CUSTOMER, VEHICLE, ADDRESS, ORDER, PAYMENT, REFUND, PAYOUT, PAYOUT_LINE, DISPUTE)
}


def canonical_schema(name: str) -> CanonicalSchema:
    try:
        return CANONICAL_SCHEMAS[name]
    except KeyError:
        known = ", ".join(sorted(CANONICAL_SCHEMAS))
        raise UnknownCanonicalSchema(
            f"canonical schema '{name}' does not exist (known: {known})"
        ) from None
