"""Unit tests of the ingestion rules (no I/O)."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.ingestion.domain.dropzones import Route, dropzone_spec, route_for
from services.ingestion.domain.files import (
    FileStatus,
    RowCounts,
    check_commit_rename,
    check_upload,
    file_arrived,
    is_temporary_name,
    load_completed,
    load_outcome,
    load_started,
    reprocessed,
)
from services.ingestion.domain.limits import LimitExceeded, Quota, Tier, UploadLimits, Usage
from services.ingestion.domain.lockouts import FailureState, LockoutPolicy
from services.ingestion.domain.logins import (
    SftpLogin,
    check_password,
    checked_username,
    hard_delete_blockers,
)
from services.ingestion.domain.paths import (
    ROOT,
    Folder,
    OutsideZone,
    ZonePath,
    file_path,
    upload_path,
    zone_path,
)
from services.ingestion.domain.schedule import arrival_schedule
from services.runtime.errors import InvalidInput, PreconditionFailed
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


@pytest.mark.parametrize("path", ["", "/", ".", "/./", "//", "incoming/..", "/rejects/../."])
def test_the_zone_root_has_many_spellings(path: str) -> None:
    assert zone_path(path) == ROOT


@pytest.mark.parametrize(
    "path",
    ["incoming/x.csv", "/incoming/x.csv", "./incoming//x.csv", "/receipts/../incoming/x.csv"],
)
def test_an_upload_is_one_name_in_incoming(path: str) -> None:
    assert upload_path(path) == "x.csv"


def test_the_zone_has_three_folders_and_only_incoming_takes_uploads() -> None:
    assert zone_path("/rejects") == ZonePath(Folder.REJECTS)
    assert file_path("receipts/a.csv.json") == ZonePath(Folder.RECEIPTS, "a.csv.json")
    for path in ("x.csv", "/x.csv", "rejects/x.csv", "receipts/x.csv", "incoming"):
        with pytest.raises(OutsideZone):
            upload_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../x",
        "/../x",
        "incoming/../../x",
        "a/../x",
        "/etc/x",
        "/etc/passwd",
        "d/l",
        "incoming/d/l",
        "incoming/x\x00y",
        "incoming/x\ny",
        "incoming/x\x7f",
        "incoming/x\x85",
        "incoming/..\\x",
        "incoming/" + "n" * 256,
        "incoming/" + "é" * 128,
        "incoming/CON",
        "incoming/nul.csv",
        "incoming/Com1.txt",
        "incoming/lpt9",
        "incoming/aux.",
        "incoming/x.csv.",
        "incoming/x.csv ",
        "incoming/...",
    ],
)
def test_paths_outside_the_zone_are_refused(path: str) -> None:
    with pytest.raises(OutsideZone):
        file_path(path)


def test_names_just_under_the_limit_and_lookalikes_of_devices_are_fine() -> None:
    assert upload_path("incoming/" + "n" * 255) == "n" * 255
    assert upload_path("incoming/console.csv") == "console.csv"
    assert upload_path("incoming/com10.csv") == "com10.csv"


def test_folders_are_not_files() -> None:
    for path in ("/", "incoming", "/rejects/"):
        with pytest.raises(OutsideZone):
            file_path(path)


def test_temporary_names_commit_only_by_a_rename_to_a_real_name() -> None:
    assert is_temporary_name("customers.csv.filepart")
    assert is_temporary_name("customers.csv.PART")
    assert not is_temporary_name("customers.csv")
    check_commit_rename("customers.csv.filepart", "customers.csv")
    with pytest.raises(PreconditionFailed):
        check_commit_rename("customers.csv", "other.csv")
    with pytest.raises(PreconditionFailed):
        check_commit_rename("a.filepart", "b.tmp")


def test_reprocess_takes_finished_files_and_retry_only_failed_ones() -> None:
    for status in (
        FileStatus.LOADED,
        FileStatus.PARTIALLY_LOADED,
        FileStatus.FAILED,
        FileStatus.DUPLICATE,
    ):
        assert reprocessed(status, retry=False) is FileStatus.RECEIVED
    assert reprocessed(FileStatus.FAILED, retry=True) is FileStatus.RECEIVED
    for status in (FileStatus.RECEIVED, FileStatus.PROCESSING, FileStatus.QUARANTINED):
        with pytest.raises(PreconditionFailed, match=status.value):
            reprocessed(status, retry=False)
    with pytest.raises(PreconditionFailed, match="retried"):
        reprocessed(FileStatus.LOADED, retry=True)


def test_limits_name_the_tier_size_and_the_quota() -> None:
    limits = UploadLimits(
        tier=Tier.STANDARD,
        max_file_bytes=100,
        quota=Quota(max_bytes=150, max_files=3),
        usage=Usage(files=2, bytes=60),
    )
    limits.check_upload(90)
    with pytest.raises(LimitExceeded, match="standard tier's maximum file size of 100 bytes"):
        limits.check_size(101)
    with pytest.raises(LimitExceeded, match="byte quota of 150 bytes"):
        limits.check_size(91)
    full = UploadLimits(Tier.STANDARD, 100, Quota(max_files=2), Usage(files=2, bytes=0))
    with pytest.raises(LimitExceeded, match="file quota of 2 files"):
        full.check_new_file()
    with pytest.raises(InvalidInput):
        Quota(max_bytes=0)
    after = limits.after(90)  # the file committed: one file fewer and 90 bytes less to go
    assert after.usage == Usage(files=3, bytes=150)
    with pytest.raises(LimitExceeded, match="file quota of 3 files"):
        after.check_new_file()


def test_failures_lock_after_five_in_the_window_and_lockouts_double() -> None:
    policy = LockoutPolicy()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    state = FailureState()
    for minute in range(4):
        state = state.after_failure(start + timedelta(minutes=minute), policy)
        assert not state.is_locked(start + timedelta(minutes=minute))
    now = start + timedelta(minutes=4)
    locked = state.after_failure(now, policy)
    assert locked.locks_now(state, now)
    assert locked.locked_until == now + timedelta(minutes=15)
    again = locked
    later = locked.locked_until or now
    for _ in range(5):
        again = again.after_failure(later, policy)
    assert again.locked_until == later + timedelta(minutes=30)
    assert policy.lock_for(20) == policy.max_lock


def test_failures_spread_beyond_the_window_never_lock() -> None:
    policy = LockoutPolicy()
    state = FailureState()
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(20):
        moment += timedelta(minutes=4)
        state = state.after_failure(moment, policy)
        assert not state.is_locked(moment)


def test_a_zone_is_late_once_a_window_passes_without_a_file() -> None:
    schedule = arrival_schedule("06:00", "Europe/Berlin")
    # 07:00 Berlin (winter: UTC+1) on 2 March: the window was 1 March 06:00 .. 2 March 06:00.
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    deadline = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    assert schedule.missed(now, None) == deadline
    assert schedule.missed(now, datetime(2026, 3, 1, 4, 0, tzinfo=UTC)) == deadline
    assert schedule.missed(now, datetime(2026, 3, 1, 6, 0, tzinfo=UTC)) is None
    assert schedule.missed(now, datetime(2026, 3, 2, 5, 30, tzinfo=UTC)) is None  # late, but in
    assert schedule.next_deadline(now) == datetime(2026, 3, 3, 5, 0, tzinfo=UTC)
    for bad in (("6am", "UTC"), ("25:00", "UTC"), ("06:00", "Mars/Olympus")):
        with pytest.raises(InvalidInput):
            arrival_schedule(*bad)


def test_only_a_login_disabled_long_enough_with_nothing_processing_can_go() -> None:
    now = datetime(2026, 1, 31, tzinfo=UTC)
    login = SftpLogin(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "dealer-1", now)
    wait = timedelta(days=30)
    assert (
        "disable it first"
        in hard_delete_blockers(login, now=now, disabled_for=wait, files_waiting=0)[0]
    )
    recent = replace(login, disabled_at=now - timedelta(days=1))
    assert (
        "less than" in hard_delete_blockers(recent, now=now, disabled_for=wait, files_waiting=0)[0]
    )
    old = replace(login, disabled_at=now - timedelta(days=31))
    assert hard_delete_blockers(old, now=now, disabled_for=wait, files_waiting=0) == []
    assert (
        "still being processed"
        in hard_delete_blockers(old, now=now, disabled_for=wait, files_waiting=2)[0]
    )


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
