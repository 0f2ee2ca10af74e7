"""`python -m bench.ingest`: loading a customer file through Canopy against `psql \\copy`.

One run on this machine: it writes a customer file (1,000,000 rows by default; 10 columns,
two of them sensitive), starts the whole platform (`devstack.stack.Stack`, embedded
PostgreSQL and NATS in a temp dir), and measures

- the raw limit: `psql \\copy` of the same file into a plain table of text columns in the
  same PostgreSQL (the best of two runs, one before and one after Canopy's load), and
- Canopy: from the SFTP client's close of the uploaded file to the file's final status
  through the API (routing, the load job, streaming from ingestion, mapping, two AES-GCM
  fields and the blind index per row, the merge into the records, the status back).

It also samples the resident memory of every service process (and of canonical's load
workers) during the load. The last line is the ratio, Canopy's rows/s over `\\copy`'s.
"""

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import asyncssh
import httpx

from devstack.stack import REPO, SERVICES, Stack, StackPorts

PSQL = "/usr/bin/psql"
SFTP_PASSWORD = secrets.token_hex(16)  # a throwaway stack: new each run
ADMIN_PASSWORD = secrets.token_hex(16)
COLUMNS = [
    "customer_id",
    "dealer_code",
    "first_name",
    "last_name",
    "email",
    "birth_date",
    "gender",
    "street",
    "postal_code",
    "city",
]
SOURCE_SCHEMA = {
    "name": "bench_customers",
    "canonical_schema": "customer",
    "columns": COLUMNS,
    "source_id_column": "customer_id",
    "tenant_code_column": "dealer_code",
    "field_mappings": [
        {"canonical_field": "first_name", "source_column": "first_name", "transforms": ["trim"]},
        {"canonical_field": "last_name", "source_column": "last_name", "transforms": ["trim"]},
        {"canonical_field": "email", "source_column": "email", "transforms": ["trim", "lower"]},
        {"canonical_field": "date_of_birth", "source_column": "birth_date"},
        {"canonical_field": "gender", "source_column": "gender", "value_map": "gender"},
        {"canonical_field": "street", "source_column": "street", "transforms": ["trim"]},
        {"canonical_field": "postal_code", "source_column": "postal_code"},
        {"canonical_field": "city", "source_column": "city", "transforms": ["trim"]},
    ],
    "value_maps": [{"name": "gender", "strict": True, "entries": {"F": "female", "M": "male"}}],
}
FIRST = ["Anna", "Jonas", "Mira", "Paul", "Lena", "Felix", "Sofia", "Noah", "Emma", "Elias"]
LAST = ["Berg", "Keller", "Schulz", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann"]
CITIES = [("Berlin", "10115"), ("Hamburg", "20095"), ("Munich", "80331"), ("Cologne", "50667")]
FINAL = {
    "FILE_STATUS_LOADED",
    "FILE_STATUS_PARTIALLY_LOADED",
    "FILE_STATUS_FAILED",
    "FILE_STATUS_DUPLICATE",
    "FILE_STATUS_QUARANTINED",
}


def write_customers(path: Path, rows: int) -> int:
    """The customer file, written in pieces (never held whole); its size in bytes."""
    pick = random.Random(2026)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(COLUMNS) + "\n")
        lines = []
        for i in range(rows):
            first, last = pick.choice(FIRST), pick.choice(LAST)
            city, postal = pick.choice(CITIES)
            lines.append(
                f"C{i:08d},N01,{first},{last},{first.lower()}.{last.lower()}{i}@example.com,"
                f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d},{'FM'[i % 2]},"
                f"{1 + i % 200} Hauptstrasse,{postal},{city}\n"
            )
            if len(lines) == 10_000:
                out.write("".join(lines))
                lines = []
        out.write("".join(lines))
    return path.stat().st_size


def rows_for_bytes(size: int) -> int:
    """How many rows make a customer file of about `size` bytes (measured on a sample)."""
    sample = 10_000
    with tempfile.TemporaryDirectory() as scratch:
        sample_size = write_customers(Path(scratch) / "sample.csv", sample)
    return max(1, round(size / (sample_size / sample)))


def psql_copy(database_url: str, path: Path) -> float:
    """Seconds `\\copy` takes to load the file into a fresh plain table."""
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    columns = ", ".join(f"{c} text" for c in COLUMNS)
    run_psql(database_url, f"CREATE TABLE {table} ({columns})")
    started = time.monotonic()
    run_psql(database_url, f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)")
    elapsed = time.monotonic() - started
    run_psql(database_url, f"DROP TABLE {table}")
    return elapsed


def run_psql(database_url: str, command: str) -> None:
    subprocess.run(
        [PSQL, database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command],
        check=True,
        stdout=subprocess.DEVNULL,
    )


class Account:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.slug = f"bench-{uuid.uuid4().hex[:6]}"
        self.email = f"admin@{self.slug}.example"
        self.username = f"bench-{uuid.uuid4().hex[:6]}"
        self.http = httpx.Client(base_url=stack.gateway_url, timeout=60)

    def create(self) -> None:
        """Account (operator CLI), tenant, code, source schema, drop zone and login (HTTP)."""
        subprocess.run(
            [sys.executable, "-m", "canopyctl", "accounts", "create", "--name", "Bench Motors"]
            + ["--slug", self.slug, "--admin-email", self.email]
            + ["--admin-password", ADMIN_PASSWORD]
            + ["--tier", "professional"],  # files up to 10 GiB: the standard tier stops at 1
            env={**os.environ, **self.stack.env()},
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        token = self.post("/v1/auth/token", {"email": self.email, "password": ADMIN_PASSWORD})
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"
        tenant = self.post("/v1/tenants", {"name": "Bench North"})
        code = {"tenant_id": tenant["id"], "source": "bench_customers", "code": "N01"}
        self.post("/v1/tenant-mapping-codes", code)
        self.post("/v1/source-schemas", SOURCE_SCHEMA)
        zone = self.post(
            "/v1/dropzones",
            {
                "name": "bench",
                "tenant_ids": [tenant["id"]],
                "routes": [{"pattern": "customers_*.csv", "source_schema": "bench_customers"}],
            },
        )
        login = {"username": self.username, "password": SFTP_PASSWORD}
        self.post(f"/v1/dropzones/{zone['id']}/logins", login)

    def post(self, path: str, body: dict) -> dict:
        response = self.http.post(path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return dict(response.json())

    def file_named(self, name: str) -> dict | None:
        response = self.http.get("/v1/files", params={"page_size": 500})
        response.raise_for_status()
        return next((f for f in response.json()["files"] if f["name"] == name), None)


async def upload(stack: Stack, account: Account, path: Path, name: str) -> float:
    """Upload `path` as `name`; the monotonic time the server acknowledged its close."""
    async with asyncssh.connect(
        "127.0.0.1",
        stack.ports.sftp,
        username=account.username,
        password=SFTP_PASSWORD,
        known_hosts=None,
        client_keys=None,
    ) as connection:
        async with connection.start_sftp_client() as sftp:
            async with sftp.open(f"incoming/{name}", "wb") as remote:
                local = await asyncio.to_thread(path.open, "rb")
                with local:
                    offset = 0
                    while chunk := await asyncio.to_thread(local.read, 1 << 20):
                        await remote.write(chunk, offset)
                        offset += len(chunk)
            return time.monotonic()


def wait_until_final(account: Account, name: str, timeout: float) -> tuple[float, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        file = account.file_named(name)
        if file and file["status"] in FINAL:
            return time.monotonic(), file
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not reach a final status within {timeout:.0f}s")


class MemorySampler:
    """Peak resident memory of each service process and of its children (load workers)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak: dict[str, int] = {}
        self.children_peak: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            for name in SERVICES:
                pid = self.stack.processes.process(name).pid
                self.peak[name] = max(self.peak.get(name, 0), _peak_rss(pid))
                for child in _children(pid):
                    rss = _rss(child)
                    self.children_peak[name] = max(self.children_peak.get(name, 0), rss)

    def report(self) -> str:
        parts = []
        for name in SERVICES:
            part = f"{name} {self.peak.get(name, 0) / 1024:.0f} MiB"
            if self.children_peak.get(name):
                part += f" (+ each load worker up to {self.children_peak[name] / 1024:.0f} MiB)"
            parts.append(part)
        return "peak RSS: " + ", ".join(parts)


class CpuMeter:
    """CPU seconds each service (with its finished load workers) and PostgreSQL (the postmaster
    and its running processes) spend between `start` and `stop`: where the load's time goes."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        self.spent = {name: -seconds for name, seconds in self._now().items()}

    def stop(self) -> None:
        for name, seconds in self._now().items():
            self.spent[name] = self.spent.get(name, 0.0) + seconds

    def report(self) -> str:
        parts = [f"{name} {seconds:.1f}" for name, seconds in self.spent.items()]
        return "CPU seconds: " + ", ".join(parts)

    def _now(self) -> dict[str, float]:
        seconds = {
            name: _cpu_seconds(self.stack.processes.process(name).pid, children=True)
            for name in SERVICES
        }
        postmaster = _postmaster(self.stack)
        if postmaster:
            server = [postmaster, *_children(postmaster)]
            seconds["postgres"] = sum(_cpu_seconds(pid) for pid in server)
        return seconds


def _cpu_seconds(pid: int, *, children: bool = False) -> float:
    """utime + stime of a process (and of its waited-for children): /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postmaster(stack: Stack) -> int | None:
    """The embedded server's postmaster (first line of its postmaster.pid)."""
    try:
        return int((stack.var_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0


def _peak_rss(pid: int) -> int:
    return _status_kib(pid, "VmHWM")


def _rss(pid: int) -> int:
    return _status_kib(pid, "VmRSS")


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the customer file")
    parser.add_argument(
        "--gigabytes",
        type=float,
        help="size the file instead: as many rows as make this many GiB (1: about 11M rows)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = parser.parse_args()
    if args.gigabytes:
        args.rows = rows_for_bytes(int(args.gigabytes * 2**30))
    if not Path(PSQL).exists():
        sys.exit(f"{PSQL} is missing (apt-get install postgresql-client)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    lines: list[str] = []
    try:
        path = work_dir / "customers.csv"
        size = write_customers(path, args.rows)
        print(f"file: {args.rows:,} rows, 10 columns (2 sensitive), {size / 2**20:.0f} MiB")
        stack = Stack(
            var_dir=work_dir / "stack",
            ports=StackPorts.free(),
            durable=True,
            sink=lambda name, line: lines.append(f"{name}: {line}"),
        )
        with stack:
            account = Account(stack)
            account.create()
            copy_seconds = psql_copy(stack.database_url, path)
            name = f"customers_{uuid.uuid4().hex[:6]}.csv"
            cpu = CpuMeter(stack)
            with MemorySampler(stack) as memory:
                started = time.monotonic()
                closed = asyncio.run(upload(stack, account, path, name))
                cpu.start()
                final, file = wait_until_final(account, name, timeout=max(600, args.rows / 500))
                cpu.stop()
            copy_seconds = min(copy_seconds, psql_copy(stack.database_url, path))
        if file["status"] != "FILE_STATUS_LOADED" or int(file["rows_created"]) != args.rows:
            raise RuntimeError(f"the load did not load every row: {file}")
        canopy_rate = args.rows / (final - closed)
        copy_rate = args.rows / copy_seconds
        print(f"psql \\copy: {copy_seconds:.1f} s, {copy_rate:,.0f} rows/s")
        print(
            f"canopy: close -> loaded {final - closed:.1f} s, {canopy_rate:,.0f} rows/s"
            f" (the upload before it: {closed - started:.1f} s)"
        )
        print(memory.report())
        print(cpu.report())
        print(
            f"ingest ratio {canopy_rate / copy_rate:.2f}"
            f" (canopy {canopy_rate / 1000:.0f}k rows/s, copy {copy_rate / 1000:.0f}k rows/s)"
        )
    except BaseException:
        print("\n".join(lines[-60:]), file=sys.stderr)
        raise
    finally:
        if args.keep:
            print(f"kept {work_dir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(work_dir)


if __name__ == "__main__":
    main()
