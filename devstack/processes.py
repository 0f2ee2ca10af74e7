"""A tiny supervisor for the child processes of `make run` and of end-to-end tests."""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

log = logging.getLogger(__name__)

LineSink = Callable[[str, str], None]
"""Receives (process name, one output line without its newline)."""

_stdout_lock = threading.Lock()


def print_line(name: str, line: str) -> None:
    """The default sink: our stdout, each line prefixed with the process name."""
    with _stdout_lock:
        sys.stdout.write(f"{name:>14} | {line}\n")
        sys.stdout.flush()


@dataclass(frozen=True)
class ExitedProcess:
    """A child that exited without being asked to."""

    name: str
    returncode: int


@dataclass
class _Child:
    argv: list[str]
    env: dict[str, str]
    cwd: Path | None
    process: subprocess.Popen[bytes]
    reader: threading.Thread
    stopping: bool = False
    reported: bool = False


class ProcessGroup:
    """Named child processes, each in its own session, with their output forwarded line by line.

    Children get their own session so that a Ctrl-C in the terminal reaches only us; we then
    stop them in order through `stop_all`. Signals go to the child's whole process group, so
    helpers a child spawned are stopped with it.
    """

    def __init__(self, *, sink: LineSink = print_line, log_dir: Path | None = None) -> None:
        self._sink = sink
        self._log_dir = log_dir
        self._children: dict[str, _Child] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` as `name`; `env` is layered over our own environment."""
        old = self._children.get(name)
        if old is not None and old.process.poll() is None:
            raise ValueError(f"process {name!r} is already running (pid {old.process.pid})")
        merged = {**os.environ, **(env or {})}
        # Python children would otherwise block-buffer their output into our pipe.
        merged.setdefault("PYTHONUNBUFFERED", "1")
        log_file = self._open_log(name)
        process = subprocess.Popen(
            argv,
            env=merged,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._forward, args=(name, process, log_file), daemon=True)
        reader.start()
        self._children[name] = _Child(
            argv=argv, env=env or {}, cwd=cwd, process=process, reader=reader
        )
        log.info("started %s (pid %d): %s", name, process.pid, " ".join(argv))
        return process

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """The current process started as `name`."""
        return self._children[name].process

    def poll(self) -> list[ExitedProcess]:
        """Children that exited since the last call without `stop`, `kill` or `stop_all`."""
        exited: list[ExitedProcess] = []
        for name, child in self._children.items():
            returncode = child.process.poll()
            if returncode is None or child.stopping or child.reported:
                continue
            child.reported = True
            exited.append(ExitedProcess(name=name, returncode=returncode))
        return exited

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to `name`'s process group; with SIGKILL, also wait until it is gone.

        The child counts as deliberately stopped: `poll` will not report its exit.
        """
        child = self._children[name]
        child.stopping = True
        _signal_group(child.process, sig)
        if sig == signal.SIGKILL:
            child.process.wait()

    def stop(self, name: str, timeout: float = 10.0) -> None:
        """Stop `name` (SIGTERM, then SIGKILL after `timeout` seconds)."""
        self._stop([self._children[name]], timeout)

    def restart(self, name: str, timeout: float = 10.0) -> subprocess.Popen[bytes]:
        """Stop `name` if it still runs, then start it again with the same command."""
        child = self._children[name]
        self._stop([child], timeout)
        return self.start(name, child.argv, child.env, cwd=child.cwd)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every child: SIGTERM to all, wait up to `timeout` seconds, then SIGKILL."""
        self._stop(list(self._children.values()), timeout)

    def _stop(self, children: list[_Child], timeout: float) -> None:
        for child in children:
            child.stopping = True
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "pid %d ignored SIGTERM for %.0fs; killing it", child.process.pid, timeout
                )
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait()
        for child in children:
            child.reader.join(timeout=2.0)

    def _open_log(self, name: str) -> IO[str] | None:
        if self._log_dir is None:
            return None
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return open(self._log_dir / f"{name}.log", "a", encoding="utf-8")

    def _forward(
        self, name: str, process: subprocess.Popen[bytes], log_file: IO[str] | None
    ) -> None:
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._sink(name, line)
                if log_file is not None:
                    log_file.write(line + "\n")
                    log_file.flush()
        finally:
            process.stdout.close()
            if log_file is not None:
                log_file.close()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Only while the leader is unreaped: afterwards its pid (= group id) may be reused.
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"nothing accepted connections on {host}:{port} within {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


def read_pid_file(path: Path) -> int | None:
    """The pid on the first line of `path`, or None if there is no usable pid file."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (FileNotFoundError, ValueError):
        return None


def is_running(pid: int) -> bool:
    """Whether a live (not zombie) process with this pid exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def terminate_pid(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Send `sig` to a process that is not our child and wait for it to go; SIGKILL on timeout."""
    if _signal_and_wait(pid, sig, timeout):
        return
    log.warning("pid %d ignored %s for %.0fs; killing it", pid, sig.name, timeout)
    if not _signal_and_wait(pid, signal.SIGKILL, 5.0):
        raise RuntimeError(f"pid {pid} survived SIGKILL")


def _signal_and_wait(pid: int, sig: signal.Signals, timeout: float) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True
