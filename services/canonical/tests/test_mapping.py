"""Unit tests of field mappings with transforms, recognition by header, the blind index,
reject records and reference fixtures."""

import json
import os
import uuid
from pathlib import Path

import pytest

from services.canonical.domain.encryption import (
    BlindIndexKey,
    FieldCipher,
    blind_index,
    blind_index_key,
)
from services.canonical.domain.errors import InvalidSourceSchema
from services.canonical.domain.loads import (
    HEADER_ONLY,
    LOADED,
    QUARANTINED,
    LoadCounts,
    LoadOutcome,
    Reject,
    rejects_csv_lines,
)
from services.canonical.domain.mapping import RowMapper
from services.canonical.domain.recognition import Coverage, recognise, unrecognised_reason
from services.canonical.domain.records import seal_record
from services.canonical.domain.reference import (
    InvalidFixture,
    check_items,
    items_of_fixture,
    reference_item,
)
from services.canonical.domain.schemas import CANONICAL_SCHEMAS, CUSTOMER, ORDER, VEHICLE
from services.canonical.domain.source_schemas import (
    FieldMapping,
    Transform,
    ValueMap,
    define_source_schema,
    redefine,
    with_missing_fields,
)

ORDER_COLUMNS = ["no", "dealer", "when", "state", "cur", "total", "mail", "first", "last"]


def order_schema(*mappings, value_maps=(), **overrides):
    arguments = dict(
        name="shop-orders",
        canonical_schema="order",
        columns=ORDER_COLUMNS,
        source_id_column="no",
        tenant_code_column="dealer",
        field_mappings=[
            FieldMapping("order_number", "no", ("trim",)),
            FieldMapping(
                "ordered_at",
                "when",
                (Transform("datetime", formats=("%d.%m.%Y %H:%M",), time_zone="Europe/Berlin"),),
            ),
            FieldMapping("status", "state", ("trim", "lower"), "states"),
            FieldMapping("currency", "cur", ("trim", "upper", Transform("default", value="EUR"))),
            FieldMapping("total_amount", "total", (Transform("decimal", locale="de"),)),
            FieldMapping("customer_email", "mail", ("trim", "lower")),
            *mappings,
        ],
        value_maps=[
            ValueMap("states", {"offen": "open", "storniert": "cancelled"}, strict=True),
            *value_maps,
        ],
    )
    arguments.update(overrides)
    return define_source_schema(**arguments)


def order_row(**values):
    base = dict(
        no=" A-1 ",
        dealer="D1",
        when="21.11.2026 10:30",
        state="Offen",
        cur="",
        total="1.234,56",
        mail=" Ada@Example.com ",
        first="ada",
        last="LOVELACE",
    )
    base.update(values)
    return [base[c] for c in ORDER_COLUMNS]


def test_transforms_turn_a_german_shop_row_into_canonical_values():
    mapped = RowMapper(order_schema()).map(2, order_row())
    assert mapped.reasons == ()
    assert mapped.fields == {
        "order_number": "A-1",
        "ordered_at": "2026-11-21T09:30:00Z",  # Berlin is UTC+1 in November
        "status": "open",
        "currency": "EUR",
        "total_amount": "1234.56",
        "customer_email": "ada@example.com",
    }


@pytest.mark.parametrize(
    ("step", "text", "expected"),
    [
        (Transform("title"), "anne-marie o'neil", "Anne-Marie O'neil"),
        (Transform("split", separator="/", part=2), "DE/Berlin/Mitte", "Berlin"),
        (Transform("split", separator="/", part=-1), "DE/Berlin/Mitte", "Mitte"),
        (Transform("split", separator="/", part=5), "DE/Berlin", ""),
        (Transform("regex", pattern=r"([A-Z]{2})-(\d+)", group=2), "ref DE-123 x", "123"),
        (Transform("date", formats=("%d.%m.%Y", "%Y%m%d")), "20261121", "2026-11-21"),
        (Transform("datetime", time_zone="America/New_York"), "2026-07-01T08:00:00", None),
        (Transform("datetime"), "2026-07-01T08:00:00+02:00", "2026-07-01T06:00:00Z"),
        (Transform("decimal", locale="en"), "1,234.5", "1234.5"),
        (Transform("decimal", locale="fr"), "1 234,5", "1234.5"),
        (Transform("decimal", locale="de-CH"), "1'234.50", "1234.50"),
        (Transform("boolean"), "Ja", "true"),
        (Transform("boolean"), "nein", "false"),
        (Transform("boolean", true_words=("vrai",)), "VRAI", "true"),
        (Transform("default", value="n/a"), "  ", "n/a"),
    ],
)
def test_each_transform(step, text, expected):
    from services.canonical.domain.mapping import compile_step

    result = compile_step(step, CUSTOMER.field_named("city"))(text)
    if expected is None:
        assert result == "2026-07-01T12:00:00Z"
    else:
        assert result == expected


def test_concat_joins_the_non_empty_columns():
    schema = define_source_schema(
        name="dms",
        canonical_schema="customer",
        columns=["id", "dealer", "first", "middle", "last"],
        source_id_column="id",
        tenant_code_column="dealer",
        field_mappings=[
            FieldMapping("last_name", "last"),
            FieldMapping(
                "first_name", "", ("title",), source_columns=("first", "middle"), separator=" "
            ),
        ],
    )
    mapped = RowMapper(schema).map(2, ["C1", "D1", "ada", "", "Lovelace"])
    assert mapped.fields["first_name"] == "Ada"
    mapped = RowMapper(schema).map(3, ["C2", "D1", "ada", " augusta ", "King"])
    assert mapped.fields["first_name"] == "Ada Augusta"


def test_a_row_gets_every_reason_with_its_column():
    schema = order_schema(
        FieldMapping("invoice_number", "first", required=True, pattern=r"INV-\d+"),
    )
    mapped = RowMapper(schema).map(
        7,
        order_row(when="yesterday", state="weg", total="12,5,0", mail="nope", first="x1"),
    )
    assert mapped.reasons == (
        "row 7: ordered_at: not a date and time in the format %d.%m.%Y %H:%M",
        "row 7: status: code 'weg' has no entry in value map 'states'",
        "row 7: total_amount: not a decimal number with ',' before the decimals",
        "row 7: customer_email: not an email address",
        "row 7: invoice_number: does not match the mapping's pattern",
    )
    assert mapped.reason_columns == ("when", "state", "total", "mail", "first")
    assert mapped.unmapped == (("status", "weg"),)


def test_lenient_value_maps_use_the_default_and_still_report_the_code():
    schema = order_schema(
        FieldMapping("channel", "last", ("lower",), "channels"),
        value_maps=[ValueMap("channels", {"web": "online"}, default_value="other")],
    )
    mapped = RowMapper(schema).map(2, order_row(last="Fax"))
    assert mapped.reasons == ()
    assert mapped.fields["channel"] == "other"
    assert mapped.unmapped == (("channel", "fax"),)


def test_sensitive_values_are_never_in_reasons_or_unmapped_codes():
    schema = order_schema(
        FieldMapping("item_count", "first"),
        value_maps=[],
        field_mappings=[
            FieldMapping("order_number", "no"),
            FieldMapping(
                "ordered_at", "when", (Transform("datetime", formats=("%d.%m.%Y %H:%M",)),)
            ),
            FieldMapping("status", "state", ("lower",), "states"),
            FieldMapping("currency", "cur", (Transform("default", value="EUR"),)),
            FieldMapping("total_amount", "total", (Transform("decimal", locale="de"),)),
            FieldMapping(
                "customer_email", "mail", (Transform("regex", pattern=r"<(.+)>", group=1),)
            ),
        ],
    )
    mapped = RowMapper(schema).map(2, order_row(mail="secret@example.com"))
    assert mapped.reasons == ("row 2: customer_email: value does not match the extract pattern",)
    assert "secret" not in " ".join(mapped.reasons)


def test_invalid_bytes_reject_the_row_naming_the_column_only():
    schema = order_schema()
    values = order_row(last="M\udcfcller", mail="a\udcffb@example.com")
    mapped = RowMapper(schema).map(4, values)
    assert mapped.reasons == (
        "row 4: column 'mail': holds bytes not valid utf-8",
        "row 4: column 'last': bytes fc are not valid utf-8",
    )
    reject = RowMapper(schema).reject(mapped, values)
    assert reject.reason_columns == ("mail", "last")
    # Kept: source id, tenant code and columns mapped onto non-sensitive fields; never the
    # mail (sensitive) nor the unmapped names.
    assert reject.value_columns == ("no", "dealer", "when", "state", "cur", "total")
    assert "mail" not in reject.value_columns and "last" not in reject.value_columns


def test_transform_parameters_are_checked_when_the_schema_is_defined():
    bad = [
        FieldMapping("invoice_number", "first", (Transform("split"),)),
        FieldMapping("channel", "last", (Transform("regex", pattern="(unclosed"),)),
        FieldMapping("tax_amount", "total", (Transform("decimal", locale="xx"),)),
        FieldMapping("item_count", "cur", (Transform("reverse"),)),
        FieldMapping("vehicle_id", "no", (Transform("datetime", time_zone="Mars/Base"),)),
    ]
    with pytest.raises(InvalidSourceSchema) as raised:
        order_schema(*bad)
    message = str(raised.value)
    for expected in (
        "split needs a separator and a part",
        "pattern '(unclosed' is not a regular expression",
        "decimal locale 'xx' is unknown",
        "unknown transforms reverse",
        "time zone 'Mars/Base' is unknown",
    ):
        assert expected in message


def test_placeholders_are_added_for_missing_fields_and_map_nothing():
    schema = order_schema()
    filled, added = with_missing_fields(schema)
    assert set(added) == {f.name for f in ORDER.fields} - {
        m.canonical_field for m in schema.field_mappings
    }
    assert all(m.is_placeholder for m in filled.field_mappings[len(schema.field_mappings) :])
    assert with_missing_fields(filled) == (filled, [])
    assert redefine(filled) == filled  # placeholders validate
    assert (
        RowMapper(filled).map(2, order_row()).fields == RowMapper(schema).map(2, order_row()).fields
    )


def test_a_required_field_only_as_a_placeholder_is_not_mapped():
    with pytest.raises(InvalidSourceSchema, match="required canonical fields not mapped: last"):
        define_source_schema(
            name="x",
            canonical_schema="customer",
            columns=["id", "dealer"],
            source_id_column="id",
            tenant_code_column="dealer",
            field_mappings=[FieldMapping("last_name", "")],
        )


# Recognition


def test_a_header_is_recognised_among_the_accounts_schemas():
    orders = order_schema()
    orders_semicolon = order_schema(name="shop-orders-semicolon", delimiter=";")
    other = order_schema(name="other", columns=[*ORDER_COLUMNS, "extra"])
    assert recognise(ORDER_COLUMNS, [other, orders]) is orders
    assert recognise(
        ORDER_COLUMNS, [orders, orders_semicolon], preferred="shop-orders-semicolon"
    ) is (orders_semicolon)
    assert recognise([";".join(ORDER_COLUMNS)], [other, orders_semicolon]) is orders_semicolon
    assert recognise(["\ufeffno", *ORDER_COLUMNS[1:]], [orders]) is orders
    assert recognise(["a", "b"], [orders, other]) is None
    assert unrecognised_reason(["a", " b"]) == (
        "the header matches no source schema of the account (columns: 'a', 'b')"
    )


def test_coverage_counts_unmapped_codes_with_sample_rows():
    coverage = Coverage()
    mapper = RowMapper(order_schema())
    for number, state in enumerate(["weg", "offen", "weg", "zu", *["weg"] * 6], start=2):
        coverage.add(mapper.map(number, order_row(state=state)))
    report = [(c.field, c.code, c.count, c.sample_rows) for c in coverage.report()]
    assert report == [("status", "weg", 8, [2, 4, 6, 7, 8]), ("status", "zu", 1, [5])]


# Load outcomes and rejects


def test_quarantine_and_header_only_outcomes():
    assert LoadOutcome.quarantined("no schema").status == QUARANTINED
    header_only = LoadOutcome.of(LoadCounts())
    assert (header_only.status, header_only.reason) == (LOADED, HEADER_ONLY)


def test_rejects_csv_has_a_line_per_reason_with_the_kept_values():
    reject = Reject(
        id=uuid.uuid4(),
        file_id=uuid.uuid4(),
        row_number=4,
        reasons=("row 4: status: bad", "row 4: tenant code 'X' is unknown"),
        created_at=None,
        reason_columns=("state", "dealer"),
        value_columns=("no", "dealer", "state"),
        values=("A-1", "X", 'we,"ird'),
    )
    assert "".join(rejects_csv_lines([reject])) == (
        "row_number,column,reason,no,dealer,state\n"
        '4,state,row 4: status: bad,A-1,X,"we,""ird"\n'
        '4,dealer,row 4: tenant code \'X\' is unknown,A-1,X,"we,""ird"\n'
    )
    assert "".join(rejects_csv_lines([])) == "row_number,column,reason\n"


# Blind index


def test_blind_index_is_keyed_per_account_and_normalised():
    key = blind_index_key(os.urandom(32))
    assert blind_index(key, "vin", "wvw zzz1jz3w386752") == blind_index(
        key, "vin", "WVWZZZ1JZ3W386752"
    )
    assert blind_index(key, "vin", "WVWZZZ1JZ3W386752") != blind_index(
        key, "registration_number", "WVWZZZ1JZ3W386752"
    )
    assert blind_index(blind_index_key(os.urandom(32)), "vin", "X") != blind_index(key, "vin", "X")
    data_key = os.urandom(32)
    assert blind_index_key(data_key) != data_key
    assert "key" not in repr(BlindIndexKey.derive(data_key, 3)).replace("BlindIndexKey", "")


def test_sealed_records_carry_the_blind_index_of_searchable_sensitive_fields():
    from services.canonical.domain.mapping import MappedRow

    data_key = os.urandom(32)
    row = MappedRow(2, "V1", "D1", {"vin": "WVWZZZ1JZ3W386752", "make": "VW", "mileage_km": 5})
    sealed = seal_record(
        row,
        account_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        source="dms",
        schema=VEHICLE,
        cipher=FieldCipher(data_key, 2),
        index_key=BlindIndexKey.derive(data_key, 2),
    )
    assert sealed.index == (
        ("vin", blind_index(blind_index_key(data_key), "vin", "WVWZZZ1JZ3W386752")),
    )
    assert sealed.index_key_version == 2
    assert "WVWZZZ" not in str(sealed.data)


# Canonical schemas and reference data


def test_every_shipped_schema_is_consistent():
    assert {"customer", "vehicle", "address", "order", "payment", "refund", "payout"} <= set(
        CANONICAL_SCHEMAS
    )
    assert {"payout_line", "dispute"} <= set(CANONICAL_SCHEMAS)
    for schema in CANONICAL_SCHEMAS.values():
        assert schema.required_fields, schema.name
        for field in schema.fields:
            assert field.max_length > 0
            if field.searchable and field.sensitive:
                assert field in schema.blind_indexed_fields
    payment = CANONICAL_SCHEMAS["payment"]
    assert payment.field_named("iban").sensitive and payment.field_named("card_last4").sensitive


def test_shipped_fixtures_are_valid():
    folder = Path(__file__).resolve().parents[1] / "fixtures"
    kinds = set()
    for path in folder.glob("*.json"):
        items = items_of_fixture(json.loads(path.read_text(encoding="utf-8")))
        assert items
        kinds.add(items[0].kind)
    assert kinds == {"marques", "brands", "currencies", "countries"}


def test_fixture_items_are_checked():
    item = reference_item(
        kind="currencies",
        natural_key="",
        data={"code": "EUR", "minor_units": 2.0},
        fixture_version=1,
    )
    assert (item.natural_key, item.data["minor_units"]) == ("EUR", 2)
    with pytest.raises(InvalidFixture) as raised:
        check_items(
            [
                item,
                item,
                reference_item(kind="planets", natural_key="", data={}, fixture_version=1),
                reference_item(
                    kind="countries", natural_key="DE", data={"alpha2": "FR"}, fixture_version=1
                ),
            ]
        )
    message = str(raised.value)
    assert "'currencies' 'EUR' is given twice" in message
    assert "unknown kind 'planets'" in message
    assert "natural key 'DE' is not its 'alpha2'" in message
