"""A file is loaded exactly once whatever breaks during its load: the canonical service or
ingestion killed with SIGKILL, or NATS away for a while. Every test uploads a 50,000-row file
through SFTP, breaks something once the load job reports progress, and then expects the file
loaded with every row, no duplicate record, and no job left unfinished.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.e2e.conftest import AccountAdmin, new_account, sftp_upload, wait_for_file
from tests.e2e.test_file_to_records import HEADER, set_up_drop_zone
from tests.resilience.conftest import ResilienceStack

ROWS = 50_000
PASSWORD = "a-long-sftp-password"
NATS_OUTAGE_SECONDS = 60


def customers(rows: int = ROWS) -> bytes:
    lines = [HEADER]
    lines += [
        f"C-{i},N01,Anna{i},Berg,anna{i}@example.com,+49301234{i % 1000:03d},"
        f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10},{'FM'[i % 2]},Berlin,{10000 + i % 90000}"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Zone:
    admin: AccountAdmin
    username: str


@pytest.fixture
async def zone(stack: ResilienceStack) -> Zone:
    """An account of its own per test (its records are counted), with tenant, schema, zone."""
    admin = await new_account(stack)
    _, _, username = await set_up_drop_zone(stack, admin)
    return Zone(admin, username)


class Upload:
    def __init__(self, stack: ResilienceStack, database_url: str, zone: Zone) -> None:
        self.stack = stack
        self.database_url = database_url
        self.admin = zone.admin
        self.username = zone.username
        self.name = f"customers_{uuid.uuid4().hex[:8]}.csv"

    async def start(self) -> None:
        await sftp_upload(self.stack, self.username, PASSWORD, self.name, customers())

    def sql(self, query: str) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, {"account": self.admin.account_id}).fetchall()

    async def wait_for_progress(self, seconds: float = 60) -> int:
        """Rows the load job reported so far, once it reported some."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = self.sql(
                "SELECT rows_processed FROM canonical.jobs"
                " WHERE account_id = %(account)s AND status = 'running'"
            )
            if rows and rows[0][0] > 0:
                return int(rows[0][0])
            await asyncio.sleep(0.05)
        raise AssertionError(f"the load of {self.name} never reported progress")

    async def assert_loaded_exactly_once(self) -> None:
        [file] = await wait_for_file(self.admin, self.name, seconds=120)
        assert file["status"] == "FILE_STATUS_LOADED", file
        assert (int(file["rows_total"]), int(file["rows_created"])) == (ROWS, ROWS), file
        [(records, keys)] = self.sql(
            "SELECT count(*), count(DISTINCT dedupe_key) FROM canonical.records"
            " WHERE account_id = %(account)s"
        )
        assert (records, keys) == (ROWS, ROWS)
        assert self.sql(
            "SELECT count(*) FROM canonical.rejects WHERE account_id = %(account)s"
        ) == [(0,)]
        jobs = self.sql(
            "SELECT status, rows_processed, attempts FROM canonical.jobs"
            " WHERE account_id = %(account)s"
        )
        assert len(jobs) == 1 and jobs[0][:2] == ("loaded", ROWS), jobs


async def test_killing_canonical_mid_load_loads_the_file_exactly_once(
    stack: ResilienceStack, resilience_database_url: str, zone: Zone
) -> None:
    upload = Upload(stack, resilience_database_url, zone)
    await upload.start()
    await upload.wait_for_progress()
    stack.processes.kill("canonical")
    await asyncio.to_thread(stack.restart_service, "canonical")
    await upload.assert_loaded_exactly_once()
    [(attempts,)] = upload.sql("SELECT attempts FROM canonical.jobs WHERE account_id = %(account)s")
    assert attempts >= 2


async def test_killing_ingestion_mid_load_loads_the_file_exactly_once(
    stack: ResilienceStack, resilience_database_url: str, zone: Zone
) -> None:
    upload = Upload(stack, resilience_database_url, zone)
    await upload.start()
    await upload.wait_for_progress()
    stack.processes.kill("ingestion")
    await asyncio.sleep(2)  # canonical's stream of the file breaks; its retries find nobody
    await asyncio.to_thread(stack.restart_service, "ingestion")
    await upload.assert_loaded_exactly_once()


async def test_nats_away_during_a_load_loads_the_file_exactly_once(
    stack: ResilienceStack, resilience_database_url: str, zone: Zone
) -> None:
    upload = Upload(stack, resilience_database_url, zone)
    await upload.start()
    await upload.wait_for_progress()
    await asyncio.to_thread(stack.nats.stop)
    await asyncio.sleep(NATS_OUTAGE_SECONDS)
    await asyncio.to_thread(stack.nats.start)
    await upload.assert_loaded_exactly_once()
