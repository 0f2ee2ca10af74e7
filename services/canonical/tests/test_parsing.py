"""Unit tests of reading hostile and unusual files: archives, encodings, dialects, limits."""

import gzip
import io
import zipfile

import pytest

from services.canonical.domain.archives import ArchiveLimits, Unpacker
from services.canonical.domain.errors import FileFormatError
from services.canonical.domain.files import (
    Dialect,
    FileLimits,
    RecordParser,
    header_problem,
    invalid_columns,
    sniff_delimiter,
)

TEXT = 'id;name\r\n1;Grüße\r\n2;"two\r\nlines"\r\n'
RECORDS = [(1, ["id", "name"]), (2, ["1", "Grüße"]), (3, ["2", "two\r\nlines"])]


def parse(data: bytes, *, chunk: int = 7, encoding="utf-8", limits=None, **dialect):
    parser = RecordParser.for_dialect(
        encoding=encoding,
        dialect=Dialect(**{"delimiter": ";", **dialect}),
        columns=("id", "name"),
        limits=limits,
    )
    records = []
    for start in range(0, len(data), chunk):
        records += parser.feed(data[start : start + chunk])
    records += parser.finish()
    return [(r.line, r.values) for r in records]


def zipped(*files: tuple[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


# Encodings


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + TEXT.encode("utf-8"),
        TEXT.encode("utf-16"),  # with its byte order mark
        b"\xfe\xff" + TEXT.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8 bom", "utf-16 le bom", "utf-16 be bom"],
)
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_byte_order_marks_choose_the_encoding(data, chunk):
    assert parse(data, chunk=chunk) == RECORDS


def test_a_configured_legacy_encoding_is_used():
    assert parse(TEXT.encode("cp1252"), encoding="cp1252") == RECORDS
    assert parse(TEXT.encode("latin-1"), encoding="latin-1") == RECORDS


def test_invalid_bytes_spoil_their_row_naming_the_column():
    data = "id;name\n1;ok\n2;M\xfcller\n3;fine\n".encode("latin-1")
    records = parse(data)
    assert [values for _, values in records][3] == ["3", "fine"]
    assert invalid_columns(records[2][1]) == [1]
    assert invalid_columns(records[1][1]) == []


def test_nul_bytes_fail_naming_the_line():
    with pytest.raises(FileFormatError, match=r"line 2: a NUL character"):
        parse(b"id;name\n1;a\x00b\n")


def test_utf16_without_a_byte_order_mark_read_as_utf8_fails_on_nul():
    with pytest.raises(FileFormatError, match="NUL character .*UTF-16 without a byte order"):
        parse(TEXT.encode("utf-16-le"))


def test_a_byte_order_mark_in_the_middle_fails():
    data = TEXT.encode() + b"\xef\xbb\xbf" + TEXT.encode()
    with pytest.raises(FileFormatError, match="line 5: a byte order mark in the middle"):
        parse(data)


# Dialects


def test_delimiter_is_sniffed_from_the_header():
    assert sniff_delimiter("a|b|c") == "|"
    assert sniff_delimiter('a\t"b;c"\td') == "\t"
    assert sniff_delimiter("single") == ","
    data = b"id|name\n1|x\n"
    assert parse(data, delimiter="auto") == [(1, ["id", "name"]), (2, ["1", "x"])]


def test_quote_and_escape_characters_are_configurable():
    data = b"id;name\n1;'it''s; here'\n2;a\\;b\n"
    assert parse(data, quote="'", escape="\\")[1:] == [(2, ["1", "it's; here"]), (3, ["2", "a;b"])]


def test_a_headerless_file_gets_the_schemas_columns_as_its_header():
    assert parse(b"1;x\n2;y\n", header=False) == [
        (0, ["id", "name"]),
        (1, ["1", "x"]),
        (2, ["2", "y"]),
    ]


def test_lf_crlf_and_quoted_newlines_mix():
    data = b'id;name\n1;a\r\n2;"b\nc"\n'
    assert parse(data, chunk=2) == [(1, ["id", "name"]), (2, ["1", "a"]), (3, ["2", "b\nc"])]


# Limits


def test_too_many_columns_fail_naming_the_line():
    data = ("id;name\n" + ";".join(["x"] * 10_000) + "\n").encode()
    with pytest.raises(FileFormatError, match="line 2: 10000 columns, more than the limit of 1000"):
        parse(data, chunk=4096)


def test_a_ten_megabyte_line_fails_without_reading_it_all():
    parser = RecordParser(encoding="utf-8", delimiter=";")
    parser.feed(b"id;name\n1;")
    with pytest.raises(FileFormatError, match="line 2: longer than 1048576 characters"):
        for _ in range(10 * 16):
            parser.feed(b"x" * 65536)


def test_a_long_line_in_one_chunk_fails_too():
    limits = FileLimits(max_record_chars=100)
    with pytest.raises(FileFormatError, match="line 2: longer than 100 characters"):
        parse(b"id;name\n1;" + b"x" * 200 + b"\nmore\n", chunk=10_000, limits=limits)


# Archives


@pytest.mark.parametrize("chunk", [1, 5, 100_000])
def test_gzip_and_zip_uploads_are_unpacked(chunk):
    data = TEXT.encode()
    assert parse(gzip.compress(data), chunk=chunk) == RECORDS
    assert parse(zipped(("customers.csv", data)), chunk=chunk) == RECORDS
    assert parse(zipped(("c.csv", data), method=zipfile.ZIP_STORED), chunk=chunk) == RECORDS


def test_a_zip_with_a_folder_entry_reads_the_file_in_it():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("export/"), b"")
        archive.writestr("export/c.csv", TEXT.encode())
    assert parse(out.getvalue()) == RECORDS


def test_a_zip_bomb_is_refused_early():
    bomb = zipped(("big.csv", b"0" * (50 << 20)))
    unpacker = Unpacker(ArchiveLimits(max_ratio=100))
    with pytest.raises(FileFormatError, match="expands more than 100 times"):
        for start in range(0, len(bomb), 4096):
            unpacker.feed(bomb[start : start + 4096])
    assert unpacker._inner.inflater.unpacked < 4 << 20  # stopped after a few MiB


def test_an_archive_over_the_size_limit_is_refused():
    data = gzip.compress(TEXT.encode() * 1000)
    with pytest.raises(FileFormatError, match="unpacks to more than 1000 bytes"):
        parse(data, limits=FileLimits(archives=ArchiveLimits(max_unpacked_bytes=1000)))


def test_nested_archives_are_refused():
    inner = zipped(("c.csv", TEXT.encode()))
    with pytest.raises(FileFormatError, match="nested archives are refused"):
        parse(zipped(("inner.zip", inner)))
    with pytest.raises(FileFormatError, match="nested archives are refused"):
        parse(gzip.compress(gzip.compress(TEXT.encode())))
    with pytest.raises(FileFormatError, match="nested archives are refused"):
        parse(zipped(("data.bin", gzip.compress(TEXT.encode()))))


def test_a_zip_of_several_files_is_refused():
    with pytest.raises(FileFormatError, match="more than one file"):
        parse(zipped(("a.csv", TEXT.encode()), ("b.csv", TEXT.encode())))


def test_truncated_and_corrupt_archives_fail():
    data = gzip.compress(TEXT.encode() * 50)
    with pytest.raises(FileFormatError, match="gzip archive is truncated"):
        parse(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match="zip archive is empty"):
        parse(zipped())
    corrupt = bytearray(zipped(("c.csv", TEXT.encode() * 50)))
    corrupt[60:70] = b"\xff" * 10
    with pytest.raises(FileFormatError):  # the archive's or the garbled text's reason
        parse(bytes(corrupt))


# Headers


def test_duplicate_header_names_are_named():
    problem = header_problem(
        line=1, expected=("id", "name", "mail"), found=["id", "name", "name"], delimiter=","
    )
    assert "missing columns 'mail'" in problem and "duplicate columns 'name'" in problem
