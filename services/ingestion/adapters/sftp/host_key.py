"""The server's SSH host key: generated once, then the same key on every start."""

import logging
import os
import uuid
from pathlib import Path

import asyncssh

log = logging.getLogger(__name__)


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """Read the Ed25519 host key at `path`, creating it (mode 0600) if there is none yet.

    Clients pin the host key on first use, so it must never change by itself. A new key is
    written under a temporary name and linked into place, so two processes starting at once
    end up with the same key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key("ssh-ed25519")
        draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key.export_private_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(draft, path)
            log.info("generated the SFTP host key", extra={"fields": {"path": str(path)}})
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return asyncssh.read_private_key(path)
