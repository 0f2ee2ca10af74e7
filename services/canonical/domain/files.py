"""Reading a customer file: decoding its bytes as they arrive, CSV records, the header check.

`RecordParser` is fed the file chunk by chunk and hands back complete records with the line
each starts on. Text is decoded incrementally; a record whose quoted field spans a chunk
boundary is kept until the rest arrives. Anything that makes the file unreadable raises
FileFormatError naming the line.
"""

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass

from services.canonical.domain.errors import FileFormatError

# A record longer than this with its quote still open is a broken file, not a long record.
MAX_RECORD_CHARS = 1 << 20
_UNEXPECTED_END = "unexpected end of data"
_OTHER_DELIMITERS = (";", "\t", "|", ",")


@dataclass(frozen=True)
class FileRecord:
    line: int  # the line (1-based) the record starts on
    values: list[str]


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
        self, *, encoding: str, delimiter: str, max_record_chars: int = MAX_RECORD_CHARS
    ) -> None:
        self.encoding = encoding
        self.delimiter = delimiter
        self.max_record_chars = max_record_chars
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._partial = ""  # decoded text after the last line break
        self._pending: list[str] = []  # complete lines of a record not yet complete
        self._pending_start = 1  # the line number of the first pending line
        self._decoded_lines = 0  # line breaks decoded so far

    def feed(self, data: bytes) -> list[FileRecord]:
        return self._parse(self._decode(data, final=False), final=False)

    def finish(self) -> list[FileRecord]:
        """The last records, once the whole file was fed; raises if it ends inside a record."""
        return self._parse(self._decode(b"", final=True), final=True)

    def _decode(self, data: bytes, *, final: bool) -> str:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as error:
            before = error.object[: error.start]
            line = self._decoded_lines + _count_lines(before, self.encoding) + 1
            bad = error.object[error.start : error.end]
            raise FileFormatError(
                f"line {line}: bytes {bad.hex(' ')} are not valid {self.encoding}"
            ) from None
        self._decoded_lines += text.count("\n")
        return text

    def _parse(self, text: str, *, final: bool) -> list[FileRecord]:
        text = self._partial + text
        cut = text.rfind("\n") + 1
        if final:
            cut = len(text)
        self._partial = text[cut:]
        lines = self._pending + _split_lines(text[:cut])
        if not lines:
            return []
        start = self._pending_start
        source = _Lines(lines)
        reader = csv.reader(source, delimiter=self.delimiter, strict=True)
        records: list[FileRecord] = []
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


def header_problem(
    *, line: int, expected: tuple[str, ...], found: list[str], delimiter: str
) -> str | None:
    """Why a header does not match the source schema's columns, or None when it does."""
    header = [value.strip() for value in found]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0].lstrip("\ufeff").strip()
    if tuple(header) == expected:
        return None
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    parts = []
    if missing:
        parts.append("missing columns " + ", ".join(repr(c) for c in missing))
    if unexpected:
        parts.append("unexpected columns " + ", ".join(repr(c) for c in unexpected))
    if not parts:
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            parts.append("duplicate columns " + ", ".join(repr(c) for c in duplicates))
        else:
            parts.append("columns are in a different order; expected " + ", ".join(expected))
    reason = f"line {line}: header does not match the source schema: " + "; ".join(parts)
    if len(header) == 1 and len(expected) > 1:
        hints = [d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]]
        if hints:
            shown = "tab" if hints[0] == "\t" else repr(hints[0])
            reason += f" (the file seems delimited by {shown}, the schema says {delimiter!r})"
    return reason
