"""What a path sent by an SFTP client means inside its drop zone.

A login sees its drop zone as `/` holding three folders and nothing else:

- `incoming/`: where it uploads (write-only: it lists what it uploaded but cannot read,
  rename, overwrite or remove a received file);
- `receipts/` and `rejects/`: what the platform writes back after each load (read-only).

Any path is reduced to the root, one folder, or one name in one folder; anything else (a `..`
that climbs out, a deeper path, an unknown folder, control characters, device names,
over-long names) is outside the zone and refused. No path is ever looked up on a file system,
so there are no links to follow.
"""

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from services.ingestion.domain.text import has_control_characters
from services.runtime.errors import Forbidden

MAX_NAME_BYTES = 255
# Names the platform derives from an upload's name (`<name>.rejects.csv`) may be this much longer.
DERIVED_SUFFIX_BYTES = len(".rejects.csv")
# Names Windows reserves for devices, with or without an extension, in any case.
DEVICE_NAME = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9]|conin\$|conout\$)(\..*)?$", re.I)


class Folder(StrEnum):
    INCOMING = "incoming"
    RECEIPTS = "receipts"
    REJECTS = "rejects"


FOLDERS = tuple(Folder)
READ_ONLY_FOLDERS = frozenset({Folder.RECEIPTS, Folder.REJECTS})


class OutsideZone(Forbidden):
    """The path does not name the drop zone, one of its folders or a file directly in one."""


@dataclass(frozen=True)
class ZonePath:
    """The root (folder and name None), a folder (name None) or a file in a folder."""

    folder: Folder | None = None
    name: str | None = None

    @property
    def is_root(self) -> bool:
        return self.folder is None

    @property
    def is_folder(self) -> bool:
        return self.folder is not None and self.name is None

    def text(self) -> str:
        """The canonical absolute path clients see."""
        if self.folder is None:
            return "/"
        return f"/{self.folder.value}" + (f"/{self.name}" if self.name is not None else "")


ROOT = ZonePath()


def check_name(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name a client may use: refused when it holds control characters or separators,
    is a device name, a dot name, ends in a dot or space, or is too long."""
    if has_control_characters(name) or any(0x80 <= ord(c) <= 0x9F for c in name):
        raise OutsideZone("file names must not contain control characters")
    if "/" in name or "\\" in name:
        raise OutsideZone("file names must not contain path separators")
    if name in ("", ".", ".."):
        raise OutsideZone("not a file name")
    if DEVICE_NAME.match(unicodedata.normalize("NFKC", name).rstrip(" .")):
        raise OutsideZone(f"{name!r} is a reserved device name")
    if name != name.rstrip(" ."):
        raise OutsideZone("file names must not end with a dot or a space")
    if len(name.encode()) > max_bytes:
        raise OutsideZone(f"file names are at most {max_bytes} bytes")
    return name


def zone_path(path: str) -> ZonePath:
    """What `path` names in the zone; `.` and `..` are resolved without leaving the root."""
    if "\x00" in path or has_control_characters(path):
        raise OutsideZone("paths must not contain control characters")
    if "\\" in path:
        raise OutsideZone("paths must not contain backslashes")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise OutsideZone("path leaves the drop zone")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        return ROOT
    try:
        folder = Folder(parts[0])
    except ValueError:
        raise OutsideZone(
            f"{parts[0]!r} is not a folder of this drop zone (incoming, receipts, rejects)"
        ) from None
    if len(parts) == 1:
        return ZonePath(folder)
    if len(parts) > 2:
        raise OutsideZone("the folders of a drop zone have no subdirectories")
    limit = MAX_NAME_BYTES if folder is Folder.INCOMING else MAX_NAME_BYTES + DERIVED_SUFFIX_BYTES
    return ZonePath(folder, check_name(parts[1], max_bytes=limit))


def file_path(path: str) -> ZonePath:
    """A path that must name a file in a folder."""
    target = zone_path(path)
    if target.name is None:
        raise OutsideZone(f"{target.text()} is a directory, not a file")
    return target


def upload_path(path: str) -> str:
    """The name of an upload: a file directly in `incoming/`."""
    target = file_path(path)
    if target.folder is not Folder.INCOMING:
        raise OutsideZone(f"{target.folder}/ is read-only: upload into incoming/")
    assert target.name is not None
    return target.name
