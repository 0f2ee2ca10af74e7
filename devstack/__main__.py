"""`python -m devstack run`: the whole platform on this machine until Ctrl-C (`make run`)."""

import argparse
import logging
import os
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from devstack import seed
from devstack.stack import REPO, Stack, StackPorts

console = Console()


def run(var_dir: Path) -> None:
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = Stack(
        var_dir=var_dir,
        ports=StackPorts.from_env(dict(os.environ)),
        durable=True,
        database_url=os.environ.get("DATABASE_URL"),
        nats_url=os.environ.get("NATS_URL"),
    )
    with stack:
        seed.seed(stack.gateway_url, stack.env())
        print_welcome(stack)
        while not stopping:
            for exited in stack.processes.poll():
                console.print(f"[red]{exited.name} exited with {exited.returncode}[/red]")
            time.sleep(0.5)
        console.print("stopping…")
    console.print("stopped")


def print_welcome(stack: Stack) -> None:
    table = Table(title="Canopy is running (Ctrl-C stops everything)", show_header=False)
    table.add_row("gateway", stack.gateway_url)
    table.add_row(
        "admin login", f"{seed.ADMIN_EMAIL} / {seed.ADMIN_PASSWORD} (account '{seed.DEMO_SLUG}')"
    )
    table.add_row(
        "SFTP", f"127.0.0.1:{stack.ports.sftp}  login {seed.SFTP_USERNAME} / {seed.SFTP_PASSWORD}"
    )
    table.add_row("demo file", str(REPO / "devstack" / "demo" / "customers_demo.csv"))
    table.add_row(
        "upload",
        f"sftp -P {stack.ports.sftp} {seed.SFTP_USERNAME}@127.0.0.1"
        "  then  put customers_demo.csv customers_demo.csv",
    )
    table.add_row(
        "token",
        f"curl -s {stack.gateway_url}/v1/auth/token"
        f' -d \'{{"email":"{seed.ADMIN_EMAIL}","password":"{seed.ADMIN_PASSWORD}"}}\'',
    )
    table.add_row(
        "records",
        f"curl -s -H 'Authorization: Bearer $TOKEN' {stack.gateway_url}/v1/records/customer",
    )
    table.add_row("database", stack.database_url)
    table.add_row("NATS", stack.nats_url)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--var-dir", type=Path, default=REPO / "var")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(args.var_dir)


if __name__ == "__main__":
    main()
