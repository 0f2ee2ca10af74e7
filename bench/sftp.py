"""`python -m bench.sftp`: Canopy's SFTP uploads against OpenSSH's internal-sftp, in one run.

Both servers run on free loopback ports of this machine: OpenSSH's sshd (installed from
Debian's packages when missing) with its own config, host key and pid file in a temp dir,
serving `internal-sftp` to a dedicated unprivileged user; and the whole Canopy platform
(`devstack.stack.Stack`, embedded PostgreSQL and NATS in the same temp dir) with the demo
account, drop zone and SFTP login of `devstack.seed`.

One client measures both: OpenSSH's `sftp` in batch mode, cipher aes128-gcm@openssh.com,
uploading with `put -f`, so every file is flushed to disk before its close returns on both
servers (Canopy flushes on close anyway, then hashes, moves and records the file);
`--no-flush` uploads with plain `put`, so OpenSSH's files may still be in the page cache. Each
measurement runs from the `put` command to the client having the close's reply (read as the
answer of a `pwd` sent right behind it), so connecting and signing in are not timed. The
workload is one large file, streamed from disk, and many small ones; each is measured a few
times, alternating servers after the machine went quiet, and the best time counts.

Canopy's files match no route of the demo drop zone: each is recorded (as quarantined) and
announced to the audit log, but no records are loaded while uploads run. The last line is the
ratio of throughputs, Canopy over OpenSSH.
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.packages import ensure_debian_package
from devstack import seed
from devstack.ports import free_port
from devstack.processes import ProcessGroup, wait_for_port
from devstack.stack import Stack, StackPorts
from devstack.unprivileged import ServiceUser, ensure_system_user, grant_path_to

CIPHER = "aes128-gcm@openssh.com"
SSHD = Path("/usr/sbin/sshd")
SSHD_PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")
BENCH_USER = "canopy-bench"
MiB = 1024 * 1024
GiB = 1024 * MiB
# The longest one client command may take before the bench gives up on it.
COMMAND_TIMEOUT = 300.0
# No new round starts once the measurements took this long (seconds).
MEASURING_BUDGET = 240.0


@dataclass(frozen=True)
class Workload:
    big_file_bytes: int
    small_files: int
    small_file_bytes: int = 10 * 1024
    rounds: int = 3

    @property
    def big_file_label(self) -> str:
        if self.big_file_bytes % GiB == 0:
            return f"{self.big_file_bytes // GiB} GiB file"
        return f"{self.big_file_bytes // MiB} MiB file"

    @property
    def small_files_label(self) -> str:
        return f"{self.small_files} x {self.small_file_bytes // 1024} KiB files"


FULL = Workload(big_file_bytes=1 * GiB, small_files=1000)
QUICK = Workload(big_file_bytes=100 * MiB, small_files=100)


@dataclass(frozen=True)
class Server:
    """An SFTP server under test, and how the client signs in to it."""

    name: str
    port: int
    username: str
    ssh_options: tuple[str, ...] = ()
    client_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Payload:
    """What is uploaded: one large file, and a directory of small files for each round."""

    big_file: Path
    small_file_dirs: tuple[Path, ...]


@dataclass
class Timings:
    """Seconds each round took, per server and workload."""

    big_file: dict[str, list[float]] = field(default_factory=dict)
    small_files: dict[str, list[float]] = field(default_factory=dict)
    # The highest one-minute load average seen as a measurement began.
    highest_load: float = 0.0


# The client


class SftpClient:
    """One signed-in OpenSSH `sftp` session, driven line by line through its batch input."""

    def __init__(self, server: Server, *, stderr_path: Path) -> None:
        self.server = server
        self.stderr_path = stderr_path
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> "SftpClient":
        argv = [
            "sftp",
            # Options before `-b`: ssh keeps the first value it gets, and `-b` would turn on
            # BatchMode, which forbids the askpass password Canopy's login needs.
            "-oBatchMode=no",
            f"-oCiphers={CIPHER}",
            "-oStrictHostKeyChecking=no",
            "-oUserKnownHostsFile=/dev/null",
            "-oLogLevel=ERROR",
            *self.server.ssh_options,
            f"-P{self.server.port}",
            "-b",
            "-",
            f"{self.server.username}@127.0.0.1",
        ]
        with open(self.stderr_path, "a") as stderr:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
                env={**os.environ, **self.server.client_env},
                start_new_session=True,
            )
        self.run()  # signed in
        return self

    def __exit__(self, *exc_info: object) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def run(self, *commands: str) -> str:
        """Run `commands`, then return the remote working directory once its reply is in (the
        client handles one command at a time, so all before it have finished by then)."""
        process = self._process
        assert process is not None and process.stdin and process.stdout
        watchdog = threading.Timer(COMMAND_TIMEOUT, process.kill)
        watchdog.start()
        try:
            process.stdin.write("".join(f"{command}\n" for command in (*commands, "pwd")))
            process.stdin.flush()
            while line := process.stdout.readline():
                if line.startswith("Remote working directory: "):
                    return line.removeprefix("Remote working directory: ").strip()
        except BrokenPipeError:
            pass
        finally:
            watchdog.cancel()
        errors = self.stderr_path.read_text().strip().splitlines()[-5:]
        raise RuntimeError(
            f"sftp to {self.server.name} failed at {commands}: " + " | ".join(errors)
        )

    def timed(self, command: str) -> float:
        """Seconds from sending `command` until the client has the reply to its last request."""
        started = time.perf_counter()
        self.run(command)
        return time.perf_counter() - started


def client_version() -> str:
    result = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    return (result.stderr or result.stdout).strip().split(",")[0]


# OpenSSH's server


def ensure_openssh_installed() -> None:
    """Install Debian's openssh-server (which brings the client) when sshd or sftp is missing."""
    ensure_debian_package(
        "openssh-server", installed=SSHD.exists() and shutil.which("sftp") is not None
    )


def bench_user() -> ServiceUser:
    """The unprivileged account OpenSSH's uploads run as, able to sign in with a key only."""
    user = ensure_system_user(BENCH_USER)
    # useradd locks the account ("!"), and sshd without PAM refuses locked accounts even for
    # keys; "*" matches no password, so the key stays the only way in.
    subprocess.run(["usermod", "-p", "*", BENCH_USER], capture_output=True, check=True)
    return user


@contextlib.contextmanager
def openssh_server(work_dir: Path, log_lines: list[str]) -> Iterator[Server]:
    """sshd on a free loopback port with its own config, keys and pid file in `work_dir`."""
    user = bench_user()
    ssh_dir = work_dir / "openssh"
    uploads = ssh_dir / "uploads"
    uploads.mkdir(parents=True)
    os.chown(uploads, user.uid, user.gid)
    host_key, client_key = ssh_dir / "ssh_host_ed25519_key", ssh_dir / "client_ed25519_key"
    for key in (host_key, client_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    authorized_keys = ssh_dir / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized_keys)
    authorized_keys.chmod(0o644)  # sshd reads it as the user
    grant_path_to(uploads, user)
    port = free_port()
    config = ssh_dir / "sshd_config"
    config.write_text(
        f"""\
ListenAddress 127.0.0.1:{port}
HostKey {host_key}
PidFile {ssh_dir / "sshd.pid"}
AuthorizedKeysFile {authorized_keys}
# The keys live in a temp dir below /tmp, which is writable by everyone.
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {BENCH_USER}
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d {uploads}
"""
    )
    # sshd insists on its privilege separation directory, a fixed path it never writes to.
    made_privsep_dir = not SSHD_PRIVILEGE_SEPARATION_DIR.exists()
    if made_privsep_dir:
        SSHD_PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755)
    try:
        with ProcessGroup(sink=lambda name, line: log_lines.append(f"{name}: {line}")) as sshd:
            sshd.start("sshd", [str(SSHD), "-D", "-e", "-f", str(config)])
            wait_for_port("127.0.0.1", port, timeout=15)
            yield Server(
                name="openssh",
                port=port,
                username=BENCH_USER,
                ssh_options=(f"-oIdentityFile={client_key}", "-oIdentitiesOnly=yes"),
            )
    finally:
        if made_privsep_dir:
            with contextlib.suppress(OSError):
                SSHD_PRIVILEGE_SEPARATION_DIR.rmdir()


# Canopy


@contextlib.contextmanager
def canopy_server(work_dir: Path, logs: Path, log_lines: list[str]) -> Iterator[Server]:
    """The whole platform with the demo drop zone and its SFTP login."""
    stack = Stack(
        var_dir=work_dir / "canopy",
        ports=StackPorts.free(),
        durable=True,
        sink=lambda name, line: log_lines.append(f"{name}: {line}"),
    )
    try:
        with output_to(logs / "canopy-start.log"):  # migrations and seeding talk a lot
            stack.start()
            credentials = seed.DemoCredentials.kept_in(stack.var_dir)
            seed.seed(stack.gateway_url, stack.env(), credentials)
        askpass = work_dir / "canopy-askpass"
        askpass.write_text(f"#!/bin/sh\necho '{credentials.sftp_password}'\n")
        askpass.chmod(0o700)
        yield Server(
            name="canopy",
            port=stack.ports.sftp,
            username=seed.SFTP_USERNAME,
            ssh_options=("-oPreferredAuthentications=password", "-oPubkeyAuthentication=no"),
            client_env={"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force"},
        )
    finally:
        stack.stop()


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send our stdout and stderr, and so those of the children we start, to `path` meanwhile."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(path, "a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


# The measurement


def make_payload(work_dir: Path, workload: Workload) -> Payload:
    """Random bytes: the large file written in blocks, never held in memory whole."""
    payload_dir = work_dir / "payload"
    payload_dir.mkdir()
    big_file = payload_dir / "big.bin"
    with open(big_file, "wb") as out:
        remaining = workload.big_file_bytes
        while remaining:
            block = min(remaining, 4 * MiB)
            out.write(os.urandom(block))
            remaining -= block
    small_dirs = []
    for round_number in range(1, workload.rounds + 1):
        small_dir = payload_dir / f"small-{round_number}"
        small_dir.mkdir()
        for index in range(workload.small_files):
            path = small_dir / f"bench-small-{round_number}-{index:05d}.bin"
            path.write_bytes(os.urandom(workload.small_file_bytes))
        small_dirs.append(small_dir)
    return Payload(big_file=big_file, small_file_dirs=tuple(small_dirs))


def upload_directory(client: SftpClient) -> str:
    """Where uploads go: `incoming/` when the server has one, else where the login starts."""
    return client.run("-cd incoming")


def measure(
    servers: list[Server], payload: Payload, workload: Workload, *, put: str, logs: Path
) -> Timings:
    """Upload the payload round by round, alternating servers, until the rounds or the time
    budget run out."""
    timings = Timings()
    clients = {
        server.name: SftpClient(server, stderr_path=logs / f"sftp-{server.name}.log")
        for server in servers
    }
    started = time.monotonic()
    with contextlib.ExitStack() as open_clients:
        for server in servers:
            client = open_clients.enter_context(clients[server.name])
            print(f"{server.name}: uploading into {upload_directory(client)}", flush=True)
        for round_number in range(1, workload.rounds + 1):
            if round_number > 1 and time.monotonic() - started > MEASURING_BUDGET:
                print(f"  time budget spent: {round_number - 1} rounds", flush=True)
                break
            big_file = f"{put} {payload.big_file} bench-big-{round_number}.bin"
            small_files = f"{put} {payload.small_file_dirs[round_number - 1]}/*"
            for server in servers:
                seconds = upload(timings, clients[server.name], big_file)
                timings.big_file.setdefault(server.name, []).append(seconds)
                print(
                    f"  round {round_number} {server.name} {workload.big_file_label}: "
                    f"{seconds:.2f} s",
                    flush=True,
                )
            for server in servers:
                seconds = upload(timings, clients[server.name], small_files)
                timings.small_files.setdefault(server.name, []).append(seconds)
                print(
                    f"  round {round_number} {server.name} {workload.small_files_label}: "
                    f"{seconds:.2f} s",
                    flush=True,
                )
    return timings


def upload(timings: Timings, client: SftpClient, command: str) -> float:
    """Seconds one upload command took, started once the machine is as quiet as it gets."""
    wait_for_quiet_machine()
    timings.highest_load = max(timings.highest_load, os.getloadavg()[0])
    return client.timed(command)


def wait_for_quiet_machine(*, idle_share: float = 0.85, longest: float = 10.0) -> None:
    """Wait (at most `longest` seconds) until the CPUs are mostly idle for half a second, so
    background work of an earlier upload (events, audit) does not slow the next one."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        idle_before, total_before = _cpu_times()
        time.sleep(0.5)
        idle_after, total_after = _cpu_times()
        if (idle_after - idle_before) / max(1, total_after - total_before) >= idle_share:
            return


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, all


# Reporting


def report(timings: Timings, workload: Workload) -> None:
    """Each server's best times, then the ratio line (always last)."""
    rates: dict[str, dict[str, float]] = {}
    for name in timings.big_file:
        big = min(timings.big_file[name])
        small = min(timings.small_files[name])
        big_rate = workload.big_file_bytes / big / 1e6
        files_rate = workload.small_files / small
        rates[name] = {"big": big_rate, "files": files_rate}
        print(
            f"{name:>8}: {workload.big_file_label} best {big:.2f} s = {big_rate:.0f} MB/s; "
            f"{workload.small_files_label} best {small:.2f} s = {files_rate:.0f} files/s"
        )
    cores = os.cpu_count() or 1
    if timings.highest_load > cores:
        print(
            f"note: load average up to {timings.highest_load:.1f} on {cores} cores while "
            "measuring; other work competed, so these figures are noisy"
        )
    canopy, openssh = rates["canopy"], rates["openssh"]
    print(
        f"sftp ratio {canopy['big'] / openssh['big']:.2f} "
        f"(canopy {canopy['big']:.0f} MB/s, openssh {openssh['big']:.0f} MB/s; "
        f"{workload.small_files} small files {canopy['files'] / openssh['files']:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sftp", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="100 MiB and 100 small files, for a fast check"
    )
    parser.add_argument(
        "--no-flush",
        action="store_true",
        help="upload with plain `put`: OpenSSH then leaves files in the page cache "
        "(Canopy flushes on close either way)",
    )
    args = parser.parse_args()
    workload = QUICK if args.quick else FULL
    put = "put" if args.no_flush else "put -f"
    if os.geteuid() != 0:
        sys.exit("bench.sftp runs as root: it installs and runs sshd for a dedicated user")
    # A SIGTERM unwinds like Ctrl-C, so every process and temp dir is cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    canopy_lines: list[str] = []
    ssh_lines: list[str] = []
    with contextlib.ExitStack() as cleanup:
        work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-sftp-")))
        logs = work_dir / "logs"
        logs.mkdir()
        try:
            ensure_openssh_installed()
            print(
                f"client: {client_version()} sftp, {CIPHER}, {put!r}; "
                f"{workload.rounds} rounds, best counts",
                flush=True,
            )
            payload = make_payload(work_dir, workload)
            openssh = cleanup.enter_context(openssh_server(work_dir, ssh_lines))
            print("starting canopy", flush=True)
            canopy = cleanup.enter_context(canopy_server(work_dir, logs, canopy_lines))
            timings = measure([canopy, openssh], payload, workload, put=put, logs=logs)
        except Exception:
            for line in [*ssh_lines[-20:], *canopy_lines[-40:]]:
                print(line, file=sys.stderr)
            for log in sorted(logs.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
    report(timings, workload)


if __name__ == "__main__":
    main()
