"""Reading a customer file: unpacking, decoding its bytes as they arrive, CSV records, the header.

`RecordParser` is fed the upload chunk by chunk and hands back complete records with the line
each starts on. A gzip or zip upload is unpacked on the fly (see archives.py); a byte order
mark (UTF-8 or UTF-16) wins over the configured encoding; text is decoded incrementally; a
record whose quoted field spans a chunk boundary is kept until the rest arrives.

What makes the whole file unreadable (broken quoting, a NUL character, a byte order mark in
the middle, a line or record over the limit, too many columns) raises FileFormatError naming
the line. Bytes that are not valid in the encoding only spoil their row: they are decoded to
lone surrogates (which valid text never holds) and `invalid_columns` names the columns, so the
mapper rejects that row and the rest load.
"""

import codecs
import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from services.canonical.domain.archives import ArchiveLimits, Unpacker
from services.canonical.domain.errors import FileFormatError

# A record longer than this (a line, or lines inside a quoted field) is a broken file.
MAX_RECORD_CHARS = 1 << 20
MAX_COLUMNS = 1000
AUTO_DELIMITER = "auto"
SNIFFED_DELIMITERS = (",", ";", "\t", "|")
_UNEXPECTED_END = "unexpected end of data"
_OTHER_DELIMITERS = (";", "\t", "|", ",")
_INVALID = "canopy.invalid-bytes"
_SURROGATES = re.compile("[\udc00-\udcff]+")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _mark_invalid(error: UnicodeError) -> tuple[str, int]:
    """Decode bytes the encoding does not allow as U+DC00 + byte (as 'surrogateescape' does for
    UTF-8, but for every codec), so the row keeps them and can name them."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + b) for b in bad), error.end


codecs.register_error(_INVALID, _mark_invalid)


@dataclass(frozen=True)
class FileLimits:
    max_record_chars: int = MAX_RECORD_CHARS
    max_columns: int = MAX_COLUMNS
    archives: ArchiveLimits = ArchiveLimits()


@dataclass(frozen=True)
class Dialect:
    """How a source schema's files are written. `delimiter` "auto" sniffs it from the header."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = ""
    header: bool = True


@dataclass(frozen=True)
class FileRecord:
    line: int  # the line (1-based) the record starts on; 0 for a header the schema supplies
    values: list[str]


def invalid_bytes(value: str) -> bytes:
    """The bytes of a value that were not valid in the file's encoding (empty when none)."""
    return bytes(ord(c) - 0xDC00 for match in _SURROGATES.findall(value) for c in match)


def printable(value: str) -> str:
    """A value with its invalid bytes shown as U+FFFD, fit to store or show."""
    return _SURROGATES.sub(lambda match: "\ufffd" * len(match.group()), value)


def invalid_columns(values: Sequence[str]) -> list[int]:
    """Indexes of the values holding bytes that were not valid in the file's encoding."""
    if _SURROGATES.search("".join(values)) is None:  # the usual row: one search, not one a value
        return []
    return [i for i, value in enumerate(values) if _SURROGATES.search(value)]


class _Lines:
    """An iterator over lines that remembers whether the csv reader ran off its end."""

    def __init__(self, lines: list[str]) -> None:
        self._iterator = iter(lines)
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            return next(self._iterator)
        except StopIteration:
            self.exhausted = True
            raise


class RecordParser:
    def __init__(
        self,
        *,
        encoding: str,
        delimiter: str,
        max_record_chars: int | None = None,
        quote: str = '"',
        escape: str = "",
        header: bool = True,
        columns: Sequence[str] = (),
        limits: FileLimits | None = None,
    ) -> None:
        """`header=False`: the file has no header line; the parser hands back `columns` as
        the first record (line 0) so callers check headers one way."""
        self.limits = limits or FileLimits()
        self.encoding = encoding
        self.delimiter = delimiter
        self.quote = quote
        self.escape = escape
        self.max_record_chars = max_record_chars or self.limits.max_record_chars
        self.max_columns = self.limits.max_columns
        self._unpacker = Unpacker(self.limits.archives)
        self._decoder: codecs.IncrementalDecoder | None = None
        self._head = b""  # the first bytes, until the byte order mark is told
        self._partial = ""  # decoded text after the last line break
        self._pending: list[str] = []  # complete lines of a record not yet complete
        self._pending_start = 1  # the line number of the first pending line
        self._decoded_lines = 0  # line breaks decoded so far
        self._text_started = False
        self._supplied_header = None if header else FileRecord(0, list(columns))

    @classmethod
    def for_dialect(
        cls,
        *,
        encoding: str,
        dialect: Dialect,
        columns: Sequence[str] = (),
        limits: FileLimits | None = None,
    ) -> "RecordParser":
        return cls(
            encoding=encoding,
            delimiter=dialect.delimiter,
            quote=dialect.quote,
            escape=dialect.escape,
            header=dialect.header,
            columns=columns,
            limits=limits,
        )

    def feed(self, data: bytes) -> list[FileRecord]:
        return self._parse(self._decode(self._unpacker.feed(data), final=False), final=False)

    def finish(self) -> list[FileRecord]:
        """The last records, once the whole file was fed; raises if it ends inside a record."""
        return self._parse(self._decode(self._unpacker.finish(), final=True), final=True)

    def _decode(self, data: bytes, *, final: bool) -> str:
        if self._decoder is None:
            self._head += data
            if len(self._head) < 3 and not final:
                return ""
            data, self._head = self._head, b""
            encoding = self.encoding
            for bom, named in _BOMS:
                if data.startswith(bom):
                    data, encoding = data[len(bom) :], named
                    break
            self._decoder = codecs.getincrementaldecoder(encoding)(errors=_INVALID)
        text = self._decoder.decode(data, final)
        if text and not self._text_started:
            self._text_started = True
            text = text.removeprefix("\ufeff")  # e.g. "utf-16" read its own mark
        for char, problem in (
            ("\x00", "a NUL character (is the file binary, or UTF-16 without a byte order mark?)"),
            ("\ufeff", "a byte order mark in the middle of the file (were files joined?)"),
        ):
            at = text.find(char)
            if at >= 0:
                line = self._decoded_lines + text.count("\n", 0, at) + 1
                raise FileFormatError(f"line {line}: {problem}")
        self._decoded_lines += text.count("\n")
        return text

    def _parse(self, text: str, *, final: bool) -> list[FileRecord]:
        text = self._partial + text
        cut = text.rfind("\n") + 1
        if final:
            cut = len(text)
        self._partial = text[cut:]
        if len(self._partial) > self.max_record_chars:
            raise FileFormatError(
                f"line {self._decoded_lines + 1}: longer than {self.max_record_chars} characters"
                " (the limit)"
            )
        new_lines = _split_lines(text[:cut])
        for number, line in enumerate(new_lines):
            if len(line) > self.max_record_chars:
                first = self._pending_start + len(self._pending)
                raise FileFormatError(
                    f"line {first + number}: longer than {self.max_record_chars} characters"
                    " (the limit)"
                )
        lines = self._pending + new_lines
        if not lines:
            return []
        if self.delimiter == AUTO_DELIMITER:
            self.delimiter = sniff_delimiter(lines[0], quote=self.quote)
        start = self._pending_start
        source = _Lines(lines)
        reader = csv.reader(
            source,
            delimiter=self.delimiter,
            quotechar=self.quote or None,
            escapechar=self.escape or None,
            quoting=csv.QUOTE_MINIMAL if self.quote else csv.QUOTE_NONE,
            strict=True,
        )
        records: list[FileRecord] = []
        if self._supplied_header is not None:
            records.append(self._supplied_header)
            self._supplied_header = None
        while True:
            consumed = reader.line_num
            try:
                values = next(reader)
            except StopIteration:
                self._pending, self._pending_start = [], start + len(lines)
                return records
            except csv.Error as error:
                if str(error) == _UNEXPECTED_END and source.exhausted and not final:
                    return self._keep_pending(records, lines[consumed:], start + consumed)
                if str(error) == _UNEXPECTED_END:
                    line = start + consumed  # where the record with the open quote starts
                else:
                    line = start + max(reader.line_num - 1, consumed)
                raise FileFormatError(f"line {line}: {_explain(error)}") from None
            if len(values) > self.max_columns:
                raise FileFormatError(
                    f"line {start + consumed}: {len(values)} columns, more than the limit of"
                    f" {self.max_columns}"
                )
            if values:
                records.append(FileRecord(start + consumed, values))

    def _keep_pending(
        self, records: list[FileRecord], pending: list[str], pending_start: int
    ) -> list[FileRecord]:
        if sum(len(line) for line in pending) > self.max_record_chars:
            raise FileFormatError(
                f"line {pending_start}: a quoted field is never closed (the record runs over"
                f" {self.max_record_chars} characters)"
            )
        self._pending, self._pending_start = pending, pending_start
        return records


def sniff_delimiter(line: str, *, quote: str = '"') -> str:
    """The most frequent of , ; tab | outside quotes in a header line ("," when none)."""
    counts = dict.fromkeys(SNIFFED_DELIMITERS, 0)
    quoted = False
    for char in line:
        if quote and char == quote:
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(SNIFFED_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _split_lines(text: str) -> list[str]:
    """Lines ending in '\\n' (kept); only '\\n' ends a line, as the csv module expects."""
    if not text:
        return []
    lines = text.split("\n")
    last = lines.pop()
    result = [line + "\n" for line in lines]
    if last:
        result.append(last)
    return result


def _count_lines(data: bytes, encoding: str) -> int:
    return data.decode(encoding, errors="replace").count("\n")


def _explain(error: csv.Error) -> str:
    message = str(error)
    if message == _UNEXPECTED_END:
        return "a quoted field is never closed"
    if message.startswith("new-line character seen in unquoted field"):
        return "a carriage return inside an unquoted field (mixed line endings?)"
    return message


def normalize_header(found: Sequence[str]) -> list[str]:
    """Header names as compared: trimmed, without a stray byte order mark."""
    header = [value.strip() for value in found]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0].lstrip("\ufeff").strip()
    return header


def header_problem(
    *, line: int, expected: tuple[str, ...], found: list[str], delimiter: str
) -> str | None:
    """Why a header does not match the source schema's columns, or None when it does."""
    header = normalize_header(found)
    if tuple(header) == expected:
        return None
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    parts = []
    if missing:
        parts.append("missing columns " + ", ".join(repr(c) for c in missing))
    if unexpected:
        parts.append("unexpected columns " + ", ".join(repr(c) for c in unexpected))
    if duplicates:
        parts.append("duplicate columns " + ", ".join(repr(c) for c in duplicates))
    if not parts:
        parts.append("columns are in a different order; expected " + ", ".join(expected))
    reason = f"line {line}: header does not match the source schema: " + "; ".join(parts)
    if len(header) == 1 and len(expected) > 1:
        hints = [d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]]
        if hints:
            shown = "tab" if hints[0] == "\t" else repr(hints[0])
            reason += f" (the file seems delimited by {shown}, the schema says {delimiter!r})"
    return reason
