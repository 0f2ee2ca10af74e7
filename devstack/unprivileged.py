"""Run backends as an unprivileged system user when devstack itself runs as root.

PostgreSQL refuses to run as root, so as root we run it as a dedicated system user. That user
must be able to reach two things we do not control: the server binaries (handled in
`devstack.postgres`) and the data directory, which often sits below a directory only root may
enter (a `mktemp -d` checkout, pytest's `/tmp/pytest-of-root`).

For the data directory we grant search (x) permission on each blocking ancestor through a POSIX
ACL entry naming only that user, instead of `chmod o+x`: `o+x` would let every local account
reach files below, for example a whole checkout in a `mktemp -d` directory, while the named
entry opens the path to the service user alone and never allows listing. `setfacl` is not
always installed, so the entry is written straight to the `system.posix_acl_access` extended
attribute. Only where the file system has no ACL support do we fall back to `o+x` (never `o+r`),
with a warning. Both grants stay in place; tools that reset modes (pytest tightens its base temp
dir) simply cause a fresh grant on the next start.
"""

import errno
import logging
import os
import pwd
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_ACL_NO_ID = 0xFFFFFFFF
_SEARCH = 0o1

AclEntry = tuple[int, int, int]  # (tag, permission bits, uid/gid or _ACL_NO_ID)


@dataclass(frozen=True)
class ServiceUser:
    """A local account that a backend runs as."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `subprocess` to run a child as this user, without root's groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "cwd": "/"}

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` as this user and capture its output (never raises on a non-zero exit)."""
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, **self.popen_kwargs()
        )

    def can_enter(self, directory: Path) -> bool:
        """Whether this user may search `directory`, given its current ancestors."""
        return self.run(["test", "-x", str(directory)]).returncode == 0


def ensure_system_user(name: str) -> ServiceUser:
    """Return the system user `name`, creating it (with its own group, no home, no login) once."""
    try:
        return _lookup(name)
    except KeyError:
        pass
    flags = ["--system", "--no-create-home", "--shell=/usr/sbin/nologin", "--user-group"]
    result = subprocess.run(["useradd", *flags, name], capture_output=True, text=True, check=False)
    try:
        # A concurrent devstack may have created it first, so look again before failing.
        return _lookup(name)
    except KeyError:
        error = result.stderr.strip()
        raise RuntimeError(f"could not create system user {name}: {error}") from None


def _lookup(name: str) -> ServiceUser:
    entry = pwd.getpwnam(name)
    return ServiceUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def chown_tree(root: Path, user: ServiceUser) -> None:
    """Give `root` and everything below it to `user`."""
    os.chown(root, user.uid, user.gid, follow_symlinks=False)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(parent, name), user.uid, user.gid, follow_symlinks=False)


def grant_path_to(directory: Path, user: ServiceUser) -> None:
    """Let `user` traverse every ancestor of `directory` and `directory` itself."""
    if user.can_enter(directory):
        return
    for step in [*reversed(directory.parents), directory]:
        if not user.can_enter(step):
            _grant_search(step, user)
    if not user.can_enter(directory):
        raise PermissionError(f"{user.name} still cannot enter {directory}")


def _grant_search(directory: Path, user: ServiceUser) -> None:
    try:
        _add_acl_search(directory, user.uid)
        log.info("granted %s search permission on %s via ACL", user.name, directory)
    except OSError as error:
        if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        os.chmod(directory, os.stat(directory).st_mode & 0o7777 | 0o001)
        log.warning("no ACL support on %s; granted o+x so %s can reach it", directory, user.name)


def _add_acl_search(path: Path, uid: int) -> None:
    entries = _read_acl(path)
    own = [e for e in entries if e[0] == _ACL_USER and e[2] == uid]
    kept = [e for e in entries if e not in own and e[0] != _ACL_MASK]
    user_perm = _SEARCH | (own[0][1] if own else 0)
    group_class = next(e[1] for e in entries if e[0] == _ACL_GROUP_OBJ)
    # Without an existing mask the group class bits are the owning group's; keep them.
    mask = next((e[1] for e in entries if e[0] == _ACL_MASK), group_class)
    updated = [*kept, (_ACL_USER, user_perm, uid), (_ACL_MASK, mask | _SEARCH, _ACL_NO_ID)]
    # The kernel requires entries ordered by tag, then by id.
    updated.sort(key=lambda e: (e[0], e[2]))
    payload = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in updated)
    os.setxattr(path, _ACL_XATTR, payload)


def _read_acl(path: Path) -> list[AclEntry]:
    try:
        raw = os.getxattr(path, _ACL_XATTR)
    except OSError as error:
        if error.errno != errno.ENODATA:
            raise
        mode = os.stat(path).st_mode
        return [
            (_ACL_USER_OBJ, mode >> 6 & 0o7, _ACL_NO_ID),
            (_ACL_GROUP_OBJ, mode >> 3 & 0o7, _ACL_NO_ID),
            (_ACL_OTHER, mode & 0o7, _ACL_NO_ID),
        ]
    return [struct.unpack_from("<HHI", raw, offset) for offset in range(4, len(raw), 8)]
