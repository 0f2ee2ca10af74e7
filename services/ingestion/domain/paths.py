"""What a path sent by an SFTP client means inside its drop zone.

A login sees its drop zone as `/`: a flat directory of the files it uploaded. Any path is
reduced to either that root or one file name in it; anything else (a `..`, a subdirectory,
an absolute path elsewhere, control characters) is outside the zone and refused.
"""

from services.ingestion.domain.text import has_control_characters
from services.runtime.errors import Forbidden

MAX_NAME_BYTES = 255
ROOT = ""


class OutsideZone(Forbidden):
    """The path does not name the drop zone or a file directly in it."""


def zone_entry(path: str) -> str:
    """`ROOT` for the zone itself, or the name of one file in it."""
    if has_control_characters(path) or "\\" in path:
        raise OutsideZone("path contains characters a drop zone does not allow")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise OutsideZone("path leaves the drop zone")
    if len(parts) > 1:
        raise OutsideZone("a drop zone has no subdirectories")
    if not parts:
        return ROOT
    name = parts[0]
    if len(name.encode()) > MAX_NAME_BYTES:
        raise OutsideZone(f"file names are at most {MAX_NAME_BYTES} bytes")
    return name


def file_name(path: str) -> str:
    """The file a path names; the zone itself is not a file."""
    name = zone_entry(path)
    if name == ROOT:
        raise OutsideZone("the drop zone itself is not a file")
    return name
