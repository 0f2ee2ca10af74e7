"""Unpacking a gzip or single-file zip upload as its bytes arrive, with limits against bombs.

The kind is told by the first bytes (never the name). The unpacked size and the ratio of
unpacked to packed bytes are checked as data flows, so a zip bomb is refused after at most
`max_unpacked_bytes` or a few MiB of output; an archive inside an archive is refused.
"""

import struct
import zlib
from dataclasses import dataclass

from services.canonical.domain.errors import FileFormatError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
ARCHIVE_MAGICS = (GZIP_MAGIC, ZIP_MAGIC, EMPTY_ZIP_MAGIC, b"7z\xbc\xaf", b"Rar!", b"BZh")
ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".tar", ".xz")
_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
_STEP = 1 << 16  # output bytes per decompress call: memory stays bounded
_RATIO_FLOOR = 1 << 20  # below this much output, any ratio is fine (small files compress well)


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int = 10 << 30
    max_ratio: int = 200


class Unpacker:
    """Feed the upload's bytes; get the file's bytes (unchanged when it is no archive)."""

    def __init__(self, limits: ArchiveLimits | None = None) -> None:
        self.limits = limits or ArchiveLimits()
        self.kind = ""  # "", "plain", "gzip" or "zip" once known
        self._head = b""
        self._inner: _Gzip | _Zip | None = None
        self._checked_inner = False
        self._inner_head = b""

    def feed(self, data: bytes) -> bytes:
        if not self.kind:
            self._head += data
            if len(self._head) < 4 and any(
                m.startswith(self._head) for m in (GZIP_MAGIC, ZIP_MAGIC, EMPTY_ZIP_MAGIC)
            ):
                return b""
            data, self._head = self._head, b""
            self._choose(data)
        if self._inner is None:
            return data
        return self._check_nested(self._inner.feed(data), final=False)

    def finish(self) -> bytes:
        if not self.kind:
            data, self._head = self._head, b""
            self._choose(data)
            if self._inner is None:
                return data
            return self._check_nested(self._inner.feed(data) + self._inner.finish(), final=True)
        if self._inner is None:
            return b""
        return self._check_nested(self._inner.finish(), final=True)

    def _choose(self, head: bytes) -> None:
        if head.startswith(GZIP_MAGIC):
            self.kind, self._inner = "gzip", _Gzip(self.limits)
        elif head.startswith(ZIP_MAGIC):
            self.kind, self._inner = "zip", _Zip(self.limits)
        elif head.startswith(EMPTY_ZIP_MAGIC):
            raise FileFormatError("the zip archive is empty")
        else:
            self.kind = "plain"

    def _check_nested(self, out: bytes, *, final: bool) -> bytes:
        if self._checked_inner:
            return out
        self._inner_head += out
        if len(self._inner_head) < 4 and not final:
            return b""
        self._checked_inner = True
        out, self._inner_head = self._inner_head, b""
        if out.startswith(ARCHIVE_MAGICS):
            raise FileFormatError(
                f"the {self.kind} archive holds another archive (nested archives are refused)"
            )
        return out


class _Inflater:
    """Counts what goes in and out of one zlib stream and enforces the limits."""

    def __init__(self, limits: ArchiveLimits, wbits: int, what: str) -> None:
        self.limits = limits
        self.what = what
        self.wbits = wbits
        self.stream = zlib.decompressobj(wbits)
        self.packed = 0
        self.unpacked = 0

    def inflate(self, data: bytes) -> tuple[bytes, bytes]:
        """(output, bytes after the end of the stream)."""
        out: list[bytes] = []
        pending = data
        while pending and not self.stream.eof:
            try:
                chunk = self.stream.decompress(pending, _STEP)
            except zlib.error as error:
                raise FileFormatError(f"the {self.what} archive is corrupt ({error})") from None
            rest = self.stream.unconsumed_tail
            self.packed += len(pending) - len(rest) - len(self.stream.unused_data)
            pending = rest
            self._count(len(chunk))
            out.append(chunk)
            if not chunk and not rest:
                break
        return b"".join(out), self.stream.unused_data if self.stream.eof else b""

    def _count(self, produced: int) -> None:
        self.unpacked += produced
        limits = self.limits
        if self.unpacked > limits.max_unpacked_bytes:
            raise FileFormatError(
                f"the {self.what} archive unpacks to more than {limits.max_unpacked_bytes} bytes"
                " (the limit); refused"
            )
        if self.unpacked > _RATIO_FLOOR and self.unpacked > limits.max_ratio * max(self.packed, 1):
            raise FileFormatError(
                f"the {self.what} archive expands more than {limits.max_ratio} times"
                " (a zip bomb?); refused"
            )


class _Gzip:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.inflater = _Inflater(limits, 16 + zlib.MAX_WBITS, "gzip")
        self.packed_before = 0
        self.unpacked_before = 0

    def feed(self, data: bytes) -> bytes:
        out, rest = self.inflater.inflate(data)
        if self.inflater.stream.eof and rest:
            if not rest.startswith(GZIP_MAGIC):
                return out  # trailing garbage after the last member is ignored, as gzip does
            # Concatenated members are one file: carry the counts on into the next member.
            previous = self.inflater
            self.inflater = _Inflater(self.limits, 16 + zlib.MAX_WBITS, "gzip")
            self.inflater.packed, self.inflater.unpacked = previous.packed, previous.unpacked
            out += self.feed(rest)
        return out

    def finish(self) -> bytes:
        if not self.inflater.stream.eof:
            raise FileFormatError("the gzip archive is truncated")
        return b""


class _Zip:
    """The first (and only) file entry of a zip archive, read from its local header on."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.buffer = b""
        self.state = "header"
        self.inflater: _Inflater | None = None
        self.stored_left = 0
        self.packed = 0
        self.unpacked = 0
        self.trailer = b""

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        self.buffer += data
        while self.buffer:
            if self.state == "header":
                if not self._read_header():
                    break
            elif self.state == "deflated":
                assert self.inflater is not None
                chunk, rest = self.inflater.inflate(self.buffer)
                out.append(chunk)
                if self.inflater.stream.eof:
                    self.buffer, self.state = rest, "after"
                else:
                    self.buffer = b""
            elif self.state == "stored":
                take = self.buffer[: self.stored_left]
                self.buffer = self.buffer[len(take) :]
                self.stored_left -= len(take)
                self.unpacked += len(take)
                if self.unpacked > self.limits.max_unpacked_bytes:
                    raise FileFormatError(
                        f"the zip archive unpacks to more than {self.limits.max_unpacked_bytes}"
                        " bytes (the limit); refused"
                    )
                out.append(take)
                if not self.stored_left:
                    self.state = "after"
            else:  # after the entry: a data descriptor, then the central directory
                self.trailer += self.buffer[: 64 - len(self.trailer)]
                self.buffer = b""
                if ZIP_MAGIC in self.trailer[:28]:
                    raise FileFormatError(
                        "the zip archive holds more than one file; put one file in each zip"
                    )
        return b"".join(out)

    def _read_header(self) -> bool:
        if len(self.buffer) < _LOCAL_HEADER.size:
            return False
        (signature, _, flags, method, _, _, _, packed, _, name_length, extra_length) = (
            _LOCAL_HEADER.unpack_from(self.buffer)
        )
        if signature != 0x04034B50:
            raise FileFormatError("the zip archive holds no file")
        end = _LOCAL_HEADER.size + name_length + extra_length
        if len(self.buffer) < end:
            return False
        name = self.buffer[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_length].decode(
            "utf-8", errors="replace"
        )
        self.buffer = self.buffer[end:]
        if flags & 0x1:
            raise FileFormatError("the zip archive is encrypted")
        if name.endswith("/") and method == 0 and packed == 0 and not flags & 0x8:
            return True  # a folder entry: the file follows
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            raise FileFormatError(
                f"the zip archive holds another archive ({name!r}); nested archives are refused"
            )
        if method == 8:
            self.state, self.inflater = "deflated", _Inflater(self.limits, -zlib.MAX_WBITS, "zip")
        elif method == 0 and not flags & 0x8 and packed != 0xFFFFFFFF:
            self.state, self.stored_left = "stored", packed
            if not packed:
                self.state = "after"
        else:
            raise FileFormatError(
                f"the zip archive uses compression method {method}; only deflate and stored"
                " entries are read"
            )
        return True

    def finish(self) -> bytes:
        if self.state in ("header", "deflated", "stored"):
            raise FileFormatError("the zip archive is truncated")
        return b""
