"""The embedded backends and the process supervisor, against real servers and processes."""

import asyncio
import os
import pwd
import signal
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import nats
import psycopg
import pytest
from nats.js.api import PubAck

from devstack.nats import EmbeddedNats
from devstack.ports import free_port
from devstack.postgres import SERVICE_USER, EmbeddedPostgres
from devstack.processes import ExitedProcess, ProcessGroup, is_running, wait_for_port

T = TypeVar("T")


def test_postgres_18_lets_a_new_login_role_connect(tmp_path: Path) -> None:
    with EmbeddedPostgres(data_dir=tmp_path / "pg", durable=False) as server:
        with psycopg.connect(server.admin_url, autocommit=True) as admin:
            version = admin.execute("select version()").fetchone()
            admin.execute("create role app login password 'secret'")
            admin.execute("grant create on schema public to app")
            fsync = admin.execute("show fsync").fetchone()
            max_connections = admin.execute("show max_connections").fetchone()
        with psycopg.connect(server.url(user="app")) as app:
            app.execute("create table note (body text)")
            is_superuser = app.execute("show is_superuser").fetchone()

    assert version is not None and "PostgreSQL 18" in version[0]
    assert is_superuser == ("off",)
    assert fsync == ("off",)
    assert max_connections == ("300",)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to the service user")
def test_postgres_as_root_runs_as_the_service_user(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with EmbeddedPostgres(data_dir=data_dir, durable=False) as server:
        assert server.pid is not None
        server_uid = Path(f"/proc/{server.pid}").stat().st_uid
        status = data_dir.stat()

    assert pwd.getpwuid(server_uid).pw_name == SERVICE_USER
    assert status.st_uid == server_uid
    assert stat.S_IMODE(status.st_mode) == 0o700


def test_postgres_restart_keeps_data_and_survives_a_stale_pid_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with EmbeddedPostgres(data_dir=data_dir, durable=False) as first:
        with psycopg.connect(first.admin_url) as conn:
            conn.execute("create table kept (value int)")
            conn.execute("insert into kept values (42)")
    # A pid that is alive but not a postgres, as after a killed run once the pid is reused.
    (data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{data_dir}\n")

    with EmbeddedPostgres(data_dir=data_dir, durable=False) as second:
        with psycopg.connect(second.admin_url) as conn:
            rows = conn.execute("select value from kept").fetchall()

    assert rows == [(42,)]


def test_postgres_start_stops_a_server_left_by_a_killed_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    orphaned = EmbeddedPostgres(data_dir=data_dir, durable=False)
    orphaned.start()  # and never stopped, as if its devstack had been killed
    orphaned_pid = orphaned.pid
    assert orphaned_pid is not None

    with EmbeddedPostgres(data_dir=data_dir, durable=False) as server:
        with psycopg.connect(server.admin_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert server.pid != orphaned_pid
        assert not is_running(orphaned_pid)


def test_nats_jetstream_reports_a_repeated_msg_id_as_duplicate(tmp_path: Path) -> None:
    with EmbeddedNats(store_dir=tmp_path / "nats") as server:
        first, second = asyncio.run(_publish_twice(server.url))

    assert not first.duplicate
    assert second.duplicate
    assert second.seq == first.seq


async def _publish_twice(url: str) -> tuple[PubAck, PubAck]:
    client = await nats.connect(url)
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name="EVENTS", subjects=["events.>"])
        headers = {"Nats-Msg-Id": "event-1"}
        first = await jetstream.publish("events.created", b"one", headers=headers)
        second = await jetstream.publish("events.created", b"one", headers=headers)
        return first, second
    finally:
        await client.close()


def test_process_group_stops_children_and_reports_unexpected_exits(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    sleeper = [sys.executable, "-c", "import time; print('up'); time.sleep(60)"]
    quitter = [sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"]

    with ProcessGroup(
        sink=lambda name, line: lines.append((name, line)), log_dir=tmp_path / "logs"
    ) as group:
        group.start("sleeper", sleeper)
        group.start("quitter", quitter)
        exited = _eventually(group.poll)
        group.kill("sleeper")
        group.restart("sleeper")
        _eventually(lambda: lines.count(("sleeper", "up")) == 2)
        assert group.poll() == []
        started = time.monotonic()
        group.stop_all(timeout=10)

    assert exited == [ExitedProcess(name="quitter", returncode=3)]
    assert time.monotonic() - started < 5
    assert group.process("sleeper").returncode == -signal.SIGTERM
    assert ("quitter", "bye") in lines
    assert (tmp_path / "logs" / "sleeper.log").read_text() == "up\nup\n"
    assert group.poll() == []


def _eventually(probe: Callable[[], T]) -> T:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.05)
    raise AssertionError(f"{probe} stayed falsy for 10s")


def test_wait_for_port_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", free_port(), timeout=0.3)
