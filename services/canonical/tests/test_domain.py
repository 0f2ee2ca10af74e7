"""Unit tests of the canonical domain: schemas, mapping, dedupe keys, hashing, encryption."""

import math
import os
import uuid

import pytest

from services.canonical.domain.encryption import FieldCipher, Keyring, binding, key_version_of
from services.canonical.domain.errors import (
    FileFormatError,
    InvalidDedupeKeyPart,
    InvalidSourceSchema,
    UndecryptableValue,
    UnknownCanonicalSchema,
)
from services.canonical.domain.files import (
    RecordParser,
    header_problem,
    invalid_bytes,
    invalid_columns,
    printable,
)
from services.canonical.domain.loads import (
    FAILED,
    LOADED,
    NO_ROW_LOADED,
    PARTIALLY_LOADED,
    LoadCounts,
    LoadOutcome,
    tenant_reasons,
)
from services.canonical.domain.mapping import MappedRow, RowMapper
from services.canonical.domain.records import (
    content_hash,
    dedupe_key,
    open_record_data,
    seal_record,
    split_dedupe_key,
)
from services.canonical.domain.schemas import (
    CANONICAL_SCHEMAS,
    CUSTOMER,
    VEHICLE,
    canonical_schema,
    encrypted_width,
)
from services.canonical.domain.source_schemas import (
    FieldMapping,
    ValueMap,
    define_source_schema,
)

COLUMNS = ["id", "dealer", "first", "last", "mail", "born", "sex", "country"]


def customer_schema(**overrides):
    arguments = dict(
        name="dms-customers",
        canonical_schema="customer",
        columns=COLUMNS,
        source_id_column="id",
        tenant_code_column="dealer",
        field_mappings=[
            FieldMapping("first_name", "first", ("trim",)),
            FieldMapping("last_name", "last", ("trim",)),
            FieldMapping("email", "mail", ("trim", "lower")),
            FieldMapping("date_of_birth", "born"),
            FieldMapping("gender", "sex", ("trim", "upper"), "genders"),
            FieldMapping("country", "country", ("trim", "upper")),
        ],
        value_maps=[ValueMap("genders", {"M": "male", "F": "female"}, strict=True)],
    )
    arguments.update(overrides)
    return define_source_schema(**arguments)


# Canonical schemas and stored widths


def test_stored_width_of_plain_fields_is_their_plaintext_width():
    assert CUSTOMER.field_named("first_name").stored_width == 100
    assert CUSTOMER.field_named("country").stored_width == 2


@pytest.mark.parametrize(
    ("plaintext", "expected"), [(0, 40), (1, 40), (2, 40), (17, 60), (254, 376), (10, 52)]
)
def test_encrypted_width_is_base64_of_nonce_ciphertext_and_tag(plaintext, expected):
    assert encrypted_width(plaintext) == expected == 4 * math.ceil((plaintext + 28) / 3)


def test_stored_width_of_sensitive_fields_adds_the_key_version_prefix():
    assert VEHICLE.field_named("vin").stored_width == 60 + 6
    assert CUSTOMER.field_named("email").stored_width == 376 + 6
    assert CUSTOMER.field_named("date_of_birth").stored_width == 52 + 6


def test_the_stored_width_holds_the_longest_value_with_the_largest_key_version():
    cipher = FieldCipher(os.urandom(32), 9999)
    for field in (f for s in CANONICAL_SCHEMAS.values() for f in s.sensitive_fields):
        stored = cipher.encrypt("x" * field.max_length, associated_data=b"a")
        assert len(stored) == field.stored_width, field.name


def test_unknown_canonical_schema_names_the_known_ones():
    with pytest.raises(UnknownCanonicalSchema, match="customer, dispute, order"):
        canonical_schema("invoice")


# Source schemas


def test_source_schema_fills_in_defaults():
    schema = customer_schema()
    assert schema.delimiter == ","
    assert schema.encoding == "utf-8"
    assert schema.tenant_code_source == "dms-customers"


def test_source_schema_spellings_of_encodings_are_normalized():
    assert customer_schema(encoding="UTF8").encoding == "utf-8"
    assert customer_schema(encoding="latin1").encoding == "latin-1"
    assert customer_schema(encoding="windows-1252").encoding == "cp1252"


def test_source_schema_names_every_problem_at_once():
    with pytest.raises(InvalidSourceSchema) as raised:
        define_source_schema(
            name="dms customers!",
            canonical_schema="customer",
            columns=["id", "dealer", "mail", "mail"],
            source_id_column="customer_no",
            tenant_code_column="branch",
            delimiter=";;",
            encoding="ebcdic",
            field_mappings=[
                FieldMapping("email", "e-mail"),
                FieldMapping("shoe_size", "id"),
                FieldMapping("gender", "mail", ("reverse",), "sexes"),
            ],
        )
    message = str(raised.value)
    for expected in (
        "name must be",
        "duplicate columns: mail",
        "delimiter must be one character",
        "encoding 'ebcdic' is not supported",
        "source_id_column 'customer_no' is not one of the columns",
        "tenant_code_column 'branch' is not one of the columns",
        "source column 'e-mail' is not one of the columns",
        "canonical field 'shoe_size' does not exist in 'customer'",
        "unknown transforms reverse",
        "value map 'sexes' does not exist",
        "required canonical fields not mapped: last_name",
    ):
        assert expected in message


def test_source_schema_refuses_unknown_canonical_schema():
    with pytest.raises(InvalidSourceSchema, match="canonical schema 'invoice' does not exist"):
        customer_schema(canonical_schema="invoice")


def test_value_map_outputs_must_be_allowed_values_of_the_field():
    with pytest.raises(InvalidSourceSchema, match="produces 'man'"):
        customer_schema(value_maps=[ValueMap("genders", {"M": "man"}, strict=True)])


def test_strict_value_map_cannot_have_a_default():
    with pytest.raises(InvalidSourceSchema, match="strict, so it cannot have a default"):
        customer_schema(value_maps=[ValueMap("genders", {"M": "male"}, True, "unknown")])


def test_canonical_field_mapped_twice_is_refused():
    mappings = [FieldMapping("last_name", "last"), FieldMapping("last_name", "first")]
    with pytest.raises(InvalidSourceSchema, match="'last_name' is mapped twice"):
        customer_schema(field_mappings=mappings)


# Mapping rows


def row(**values):
    base = dict(
        id="C1",
        dealer="D1",
        first=" Ada ",
        last="Lovelace",
        mail="Ada@Example.COM",
        born="1815-12-10",
        sex="f",
        country="gb",
    )
    base.update(values)
    return [base[c] for c in COLUMNS]


def test_mapping_applies_transforms_then_the_value_map():
    mapped = RowMapper(customer_schema()).map(2, row())
    assert mapped.reasons == ()
    assert mapped.source_id == "C1"
    assert mapped.tenant_code == "D1"
    assert mapped.fields == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "date_of_birth": "1815-12-10",
        "gender": "female",
        "country": "GB",
    }


def test_mapping_collects_every_reason_of_a_row():
    mapped = RowMapper(customer_schema()).map(
        4, row(id="", last=" ", mail="not-an-email", born="10.12.1815", sex="X", country="GBR")
    )
    assert mapped.reasons == (
        "row 4: source id (column 'id') is empty",
        "row 4: last_name: is required",
        "row 4: email: not an email address",
        "row 4: date_of_birth: not a date (YYYY-MM-DD)",
        "row 4: gender: code 'X' has no entry in value map 'genders'",
        "row 4: country: longer than 2 bytes",
    )


def test_empty_optional_fields_are_none():
    mapped = RowMapper(customer_schema()).map(2, row(mail="", born="", sex=""))
    assert mapped.reasons == ()
    assert mapped.fields["email"] is None
    assert mapped.fields["date_of_birth"] is None
    assert mapped.fields["gender"] is None


def test_lenient_value_map_uses_the_default_for_unknown_codes():
    schema = customer_schema(value_maps=[ValueMap("genders", {"M": "male"}, False, "unknown")])
    mapped = RowMapper(schema).map(2, row(sex="Q"))
    assert mapped.reasons == ()
    assert mapped.fields["gender"] == "unknown"


def test_sensitive_values_never_appear_in_reasons():
    schema = customer_schema(
        field_mappings=[
            FieldMapping("last_name", "last"),
            FieldMapping("email", "mail", (), "mails"),
        ],
        value_maps=[ValueMap("mails", {"x": "y@example.com"}, strict=True)],
    )
    mapped = RowMapper(schema).map(3, row(mail="secret@example.com"))
    assert mapped.reasons == ("row 3: email: a code has no entry in value map 'mails'",)


def test_row_with_the_wrong_number_of_fields_is_rejected_with_the_counts():
    mapped = RowMapper(customer_schema()).map(5, ["a", "b", "c", "d", "e"])
    assert mapped.reasons == ("row 5: expected 8 fields, found 5",)


def test_field_types_are_checked():
    schema = define_source_schema(
        name="dms-vehicles",
        canonical_schema="vehicle",
        columns=["id", "dealer", "vin", "year", "km", "fuel"],
        source_id_column="id",
        tenant_code_column="dealer",
        field_mappings=[
            FieldMapping("vin", "vin", ("trim", "upper")),
            FieldMapping("model_year", "year"),
            FieldMapping("mileage_km", "km"),
            FieldMapping("fuel_type", "fuel", ("lower",)),
        ],
    )
    mapper = RowMapper(schema)
    good = mapper.map(2, ["V1", "D1", " wvwzzz1jzxw000001 ", "2019", "12000", "Diesel"])
    assert good.reasons == ()
    assert good.fields == {
        "vin": "WVWZZZ1JZXW000001",
        "model_year": 2019,
        "mileage_km": 12000,
        "fuel_type": "diesel",
    }
    bad = mapper.map(3, ["V2", "D1", "WVWZZZ1JZXW00000I", "1800", "12,5", "steam"])
    assert bad.reasons == (
        "row 3: vin: not a 17-character VIN",
        "row 3: model_year: must be at least 1886",
        "row 3: mileage_km: not a whole number",
        "row 3: fuel_type: 'steam' is not one of petrol, diesel, electric, hybrid,"
        " plug_in_hybrid, lpg, cng, hydrogen, other",
    )


# Dedupe keys


def test_dedupe_key_joins_the_parts():
    tenant = uuid.UUID("01890000-0000-7000-8000-000000000001")
    key = dedupe_key(tenant_id=tenant, source="dms", object_type="customer", source_id="C1")
    assert key == f"{tenant}:dms:customer:C1"


def test_dedupe_key_escapes_separators_and_backslashes_inside_parts():
    key = dedupe_key(tenant_id="t", source="dms:eu", object_type="customer", source_id="a\\:b")
    assert key == "t:dms\\:eu:customer:a\\\\\\:b"
    assert split_dedupe_key(key) == ["t", "dms:eu", "customer", "a\\:b"]


def test_dedupe_keys_of_different_parts_never_collide():
    one = dedupe_key(tenant_id="t", source="a:b", object_type="customer", source_id="c")
    two = dedupe_key(tenant_id="t", source="a", object_type="customer", source_id="b:c")
    assert one != two


@pytest.mark.parametrize("empty", ["tenant_id", "source", "object_type", "source_id"])
def test_dedupe_key_refuses_empty_parts(empty):
    parts = dict(tenant_id="t", source="s", object_type="customer", source_id="1")
    parts[empty] = ""
    with pytest.raises(InvalidDedupeKeyPart, match=empty):
        dedupe_key(**parts)


# Content hash


def test_content_hash_ignores_key_order_and_sees_every_change():
    assert content_hash({"a": 1, "b": "x"}) == content_hash({"b": "x", "a": 1})
    assert content_hash({"a": 1, "b": "x"}) != content_hash({"a": 1, "b": "y"})
    assert content_hash({"a": None}) != content_hash({})


# Encryption


def test_encryption_round_trip_with_version_prefix():
    cipher = FieldCipher(os.urandom(32), 3)
    stored = cipher.encrypt("ada@example.com", associated_data=b"acc|customer|email|k1")
    assert stored.startswith("v3:")
    assert key_version_of(stored) == 3
    assert "ada" not in stored
    assert cipher.decrypt(stored, associated_data=b"acc|customer|email|k1") == "ada@example.com"


def test_encryption_uses_a_fresh_nonce_every_time():
    cipher = FieldCipher(os.urandom(32), 1)
    assert cipher.encrypt("x", associated_data=b"a") != cipher.encrypt("x", associated_data=b"a")


def test_ciphertext_is_bound_to_its_record_and_field():
    cipher = FieldCipher(os.urandom(32), 1)
    account = uuid.uuid4()
    here = binding(account_id=account, schema="customer", field="email", dedupe_key="t:s:c:1")
    stored = cipher.encrypt("ada@example.com", associated_data=here)
    for elsewhere in (
        binding(account_id=account, schema="customer", field="email", dedupe_key="t:s:c:2"),
        binding(account_id=account, schema="customer", field="phone", dedupe_key="t:s:c:1"),
        binding(account_id=uuid.uuid4(), schema="customer", field="email", dedupe_key="t:s:c:1"),
    ):
        with pytest.raises(UndecryptableValue):
            cipher.decrypt(stored, associated_data=elsewhere)


def test_another_key_cannot_decrypt():
    stored = FieldCipher(os.urandom(32), 1).encrypt("x", associated_data=b"a")
    with pytest.raises(UndecryptableValue):
        FieldCipher(os.urandom(32), 1).decrypt(stored, associated_data=b"a")


def test_keyring_picks_the_key_version_of_each_value():
    old, new = os.urandom(32), os.urandom(32)
    keyring = Keyring({1: old, 2: new})
    one = FieldCipher(old, 1).encrypt("one", associated_data=b"a")
    two = FieldCipher(new, 2).encrypt("two", associated_data=b"a")
    assert keyring.decrypt(one, associated_data=b"a") == "one"
    assert keyring.decrypt(two, associated_data=b"a") == "two"
    with pytest.raises(UndecryptableValue, match="key version 7 is not available"):
        keyring.decrypt("v7:AAAA", associated_data=b"a")


def test_sealed_record_hides_sensitive_fields_and_hashes_the_plaintext():
    key, account, tenant = os.urandom(32), uuid.uuid4(), uuid.uuid4()
    mapped = RowMapper(customer_schema()).map(2, row())
    seal = dict(account_id=account, tenant_id=tenant, source="dms", schema=CUSTOMER)
    first = seal_record(mapped, cipher=FieldCipher(key, 1), **seal)
    again = seal_record(mapped, cipher=FieldCipher(key, 1), **seal)
    assert first.data["email"].startswith("v1:") and first.data["date_of_birth"].startswith("v1:")
    assert first.data["first_name"] == "Ada"
    assert first.data["email"] != again.data["email"]
    assert first.content_hash == again.content_hash == content_hash(mapped.fields)
    opened = open_record_data(
        first.data,
        account_id=account,
        schema=CUSTOMER,
        dedupe_key=first.dedupe_key,
        keyring=Keyring({1: key}),
    )
    assert opened == mapped.fields
    with pytest.raises(UndecryptableValue):
        open_record_data(
            first.data,
            account_id=account,
            schema=CUSTOMER,
            dedupe_key=first.dedupe_key + "x",
            keyring=Keyring({1: key}),
        )


# Reading files


def parse(data: bytes, *, chunk: int = 1, encoding="utf-8", delimiter=","):
    parser = RecordParser(encoding=encoding, delimiter=delimiter)
    records = []
    for start in range(0, len(data), chunk):
        records += parser.feed(data[start : start + chunk])
    records += parser.finish()
    return [(r.line, r.values) for r in records]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_records_are_the_same_however_the_bytes_are_chunked(chunk):
    data = 'id,name\r\n1,"Zoë ""Z"" Müller"\r\n\r\n2,"two\nlines"\n3,last'.encode()
    assert parse(data, chunk=chunk) == [
        (1, ["id", "name"]),
        (2, ["1", 'Zoë "Z" Müller']),
        (4, ["2", "two\nlines"]),
        (6, ["3", "last"]),
    ]


def test_bytes_not_in_the_encoding_spoil_only_their_row():
    data = b"id,name\n1,ok\n2,\xff\xfe broken\n3,fine\n"
    records = parse(data, chunk=5)
    assert [line for line, _ in records] == [1, 2, 3, 4]
    _, spoiled = records[2]
    assert invalid_columns(spoiled) == [1]
    assert invalid_bytes(spoiled[1]) == b"\xff\xfe"
    assert printable(spoiled[1]) == "\ufffd\ufffd broken"


def test_unclosed_quote_fails_naming_the_line():
    with pytest.raises(FileFormatError, match="line 3: a quoted field is never closed"):
        parse(b'id,name\n1,ok\n2,"open\n3,more\n', chunk=4)


def test_broken_quoting_fails_naming_the_line():
    with pytest.raises(FileFormatError, match="line 2: .*expected after"):
        parse(b'id,name\n1,"quoted"trailing\n')


def test_a_never_closed_quote_stops_at_the_record_limit():
    parser = RecordParser(encoding="utf-8", delimiter=",", max_record_chars=100)
    parser.feed(b'id,name\n1,"open\n')
    with pytest.raises(FileFormatError, match="line 2: a quoted field is never closed"):
        for _ in range(50):
            parser.feed(b"more text\n")


def test_other_encodings_and_delimiters():
    text = "id;name\n1;Grüße\n"
    assert parse(text.encode("utf-16"), encoding="utf-16", delimiter=";", chunk=3) == [
        (1, ["id", "name"]),
        (2, ["1", "Grüße"]),
    ]
    assert parse(text.encode("cp1252"), encoding="cp1252", delimiter=";")[1] == (2, ["1", "Grüße"])


def test_header_problems_name_missing_and_unexpected_columns():
    expected = ("id", "dealer", "mail")
    assert (
        header_problem(line=1, expected=expected, found=["id", "dealer", "mail"], delimiter=",")
        is None
    )
    assert (
        header_problem(
            line=1, expected=expected, found=["\ufeffid", " dealer", "mail"], delimiter=","
        )
        is None
    )
    problem = header_problem(line=1, expected=expected, found=["id", "branch"], delimiter=",")
    assert problem == (
        "line 1: header does not match the source schema: missing columns 'dealer', 'mail';"
        " unexpected columns 'branch'"
    )
    problem = header_problem(
        line=1, expected=expected, found=["mail", "id", "dealer"], delimiter=","
    )
    assert "columns are in a different order; expected id, dealer, mail" in problem


def test_header_problem_suggests_the_delimiter_the_file_seems_to_use():
    problem = header_problem(line=1, expected=("id", "dealer"), found=["id;dealer"], delimiter=",")
    assert "(the file seems delimited by ';', the schema says ',')" in problem


# Load outcome and tenants


def test_load_status_follows_the_rejects():
    assert LoadOutcome.of(LoadCounts(rows_total=3, created=3)).status == LOADED
    partial = LoadOutcome.of(LoadCounts(rows_total=3, created=2, rejected=1))
    assert (partial.status, partial.reason) == (PARTIALLY_LOADED, "1 of 3 rows rejected")
    failed = LoadOutcome.of(LoadCounts(rows_total=3, rejected=3))
    assert (failed.status, failed.reason) == (FAILED, NO_ROW_LOADED)
    assert LoadOutcome.of(LoadCounts()).status == LOADED


def test_tenant_codes_must_resolve_into_the_drop_zones_scope():
    inside, outside = uuid.uuid4(), uuid.uuid4()
    mapped = MappedRow(7, "C1", "D9", {})
    allowed = frozenset({inside})
    assert tenant_reasons(mapped, tenant_id=inside, allowed=allowed, source="dms") == ()
    assert tenant_reasons(mapped, tenant_id=None, allowed=allowed, source="dms") == (
        "row 7: tenant code 'D9' is unknown for source 'dms'",
    )
    assert tenant_reasons(mapped, tenant_id=outside, allowed=allowed, source="dms") == (
        "row 7: tenant code 'D9' belongs to a tenant outside this drop zone's scope",
    )
