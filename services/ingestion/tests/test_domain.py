"""Unit tests of the ingestion rules (no I/O)."""

import uuid

import pytest

from services.ingestion.domain.dropzones import Route, dropzone_spec, route_for
from services.ingestion.domain.files import (
    FileStatus,
    RowCounts,
    check_upload,
    file_arrived,
    load_completed,
    load_outcome,
    load_started,
)
from services.ingestion.domain.logins import check_password, checked_username
from services.ingestion.domain.paths import ROOT, OutsideZone, file_name, zone_entry
from services.runtime.errors import InvalidInput
from services.runtime.pages import decode_token, encode_token, page_size, paged

ROUTES = (Route("customers_*.csv", "dms_customers"), Route("*.csv", "generic"))


def test_first_matching_route_wins() -> None:
    assert route_for(ROUTES, "customers_2026-11-21.csv") == ROUTES[0]
    assert route_for(ROUTES, "vehicles.csv") == ROUTES[1]


def test_routes_match_case_sensitively_and_not_at_all_when_nothing_fits() -> None:
    assert route_for(ROUTES[:1], "CUSTOMERS_1.csv") is None
    assert route_for(ROUTES, "customers.xlsx") is None


def test_a_dropzone_needs_a_name_tenants_and_routes() -> None:
    tenant = uuid.uuid4()
    with pytest.raises(InvalidInput, match="name"):
        dropzone_spec(name="  ", tenant_ids=[tenant], routes=ROUTES)
    with pytest.raises(InvalidInput, match="tenant"):
        dropzone_spec(name="uploads", tenant_ids=[], routes=ROUTES)
    with pytest.raises(InvalidInput, match="route"):
        dropzone_spec(name="uploads", tenant_ids=[tenant], routes=[])
    with pytest.raises(InvalidInput, match="pattern"):
        dropzone_spec(name="uploads", tenant_ids=[tenant], routes=[Route("", "x")])
    with pytest.raises(InvalidInput, match="source_schema"):
        dropzone_spec(name="uploads", tenant_ids=[tenant], routes=[Route("*.csv", " ")])
    with pytest.raises(InvalidInput, match="file names, not paths"):
        dropzone_spec(name="uploads", tenant_ids=[tenant], routes=[Route("in/*.csv", "x")])


def test_a_dropzone_spec_is_trimmed_and_names_each_tenant_once() -> None:
    tenant = uuid.uuid4()
    spec = dropzone_spec(
        name=" uploads ", tenant_ids=[tenant, tenant], routes=[Route(" *.csv ", " dms ")]
    )
    assert spec.name == "uploads"
    assert spec.tenant_ids == (tenant,)
    assert spec.routes == (Route("*.csv", "dms"),)


@pytest.mark.parametrize("username", ["dealer-01", "a.b_c", "ABC", "x" * 64])
def test_usernames_are_kept_in_lower_case(username: str) -> None:
    assert checked_username(username) == username.lower()


@pytest.mark.parametrize("username", ["ab", "-dealer", "dealer one", "dealer/1", "x" * 65, "ü-ser"])
def test_malformed_usernames_are_refused(username: str) -> None:
    with pytest.raises(InvalidInput, match="username"):
        checked_username(username)


def test_passwords_need_twelve_characters_and_are_never_echoed() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password("short-pw")
    assert "short-pw" not in str(refused.value)
    check_password("twelve chars")


@pytest.mark.parametrize("path", ["", "/", ".", "/./", "//"])
def test_the_zone_root_has_many_spellings(path: str) -> None:
    assert zone_entry(path) == ROOT


@pytest.mark.parametrize("path", ["x.csv", "/x.csv", "./x.csv", "//x.csv", "/./x.csv"])
def test_a_file_is_one_name_in_the_zone(path: str) -> None:
    assert file_name(path) == "x.csv"


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../x",
        "/../x",
        "a/../x",
        "/etc/x",
        "/etc/passwd",
        "d/l",
        "x\x00y",
        "x\ny",
        "x\x7f",
        "..\\x",
        "n" * 256,
    ],
)
def test_paths_outside_the_zone_are_refused(path: str) -> None:
    with pytest.raises(OutsideZone):
        zone_entry(path)


def test_the_root_is_not_a_file() -> None:
    with pytest.raises(OutsideZone):
        file_name("/")


def test_empty_uploads_are_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        check_upload(name="x.csv", size_bytes=0)
    check_upload(name="x.csv", size_bytes=1)


def test_an_arrival_with_a_route_is_received_for_its_source_schema() -> None:
    arrival = file_arrived(name="customers_1.csv", routes=ROUTES, original=None)
    assert arrival.status is FileStatus.RECEIVED
    assert arrival.source_schema == "dms_customers"


def test_an_arrival_no_route_matches_is_quarantined_with_a_reason() -> None:
    arrival = file_arrived(name="notes.txt", routes=ROUTES, original=None)
    assert arrival.status is FileStatus.QUARANTINED
    assert "notes.txt" in arrival.reason


def test_known_content_is_a_duplicate_even_under_another_name() -> None:
    original = uuid.uuid4()
    arrival = file_arrived(name="notes.txt", routes=ROUTES, original=original)
    assert arrival.status is FileStatus.DUPLICATE
    assert arrival.duplicate_of == original


def test_a_load_starts_on_received_or_failed_files_only() -> None:
    assert load_started(FileStatus.RECEIVED) is FileStatus.PROCESSING
    assert load_started(FileStatus.FAILED) is FileStatus.PROCESSING
    for status in (FileStatus.PROCESSING, FileStatus.LOADED, FileStatus.DUPLICATE):
        assert load_started(status) is None


def test_a_load_outcome_is_one_of_four() -> None:
    assert load_outcome("partially_loaded") is FileStatus.PARTIALLY_LOADED
    for bogus in ("received", "duplicate", "done", ""):
        with pytest.raises(InvalidInput):
            load_outcome(bogus)


def test_a_duplicate_stays_a_duplicate() -> None:
    assert load_completed(FileStatus.DUPLICATE, FileStatus.LOADED) is None
    assert load_completed(FileStatus.PROCESSING, FileStatus.FAILED) is FileStatus.FAILED


def test_row_counts_cannot_be_negative() -> None:
    with pytest.raises(InvalidInput):
        RowCounts(total=1, rejected=-1)


def test_page_tokens_are_opaque_and_checked() -> None:
    last = uuid.uuid4()
    assert decode_token(encode_token(last)) == last
    assert decode_token("") is None
    with pytest.raises(InvalidInput):
        decode_token("not a token!")
    assert (page_size(0), page_size(10), page_size(10_000)) == (50, 10, 500)
    with pytest.raises(InvalidInput):
        page_size(-1)


def test_a_page_has_a_next_token_only_when_more_rows_follow() -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    assert paged(ids[:2], 2, lambda i: i).next_token == ""
    page = paged(ids, 2, lambda i: i)
    assert page.items == ids[:2]
    assert decode_token(page.next_token) == ids[1]
