"""`python -m devstack run`: the whole platform on this machine until Ctrl-C (`make run`)."""

import argparse
import logging
import os
import signal
import time
from pathlib import Path

from rich.console import Console

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
        credentials = seed.DemoCredentials.kept_in(var_dir)
        seed.seed(stack.gateway_url, stack.env(), credentials)
        print_welcome(stack, credentials)
        while not stopping:
            for exited in stack.processes.poll():
                console.print(f"[red]{exited.name} exited with {exited.returncode}[/red]")
            time.sleep(0.5)
        console.print("stopping…")
    console.print("stopped")


def print_welcome(stack: Stack, credentials: seed.DemoCredentials) -> None:
    gateway, sftp = stack.gateway_url, stack.ports.sftp
    demo_file = REPO / "devstack" / "demo" / "customers_demo.csv"
    sftp_login = f"{seed.SFTP_USERNAME}@127.0.0.1"
    target = "incoming/customers_demo.csv"
    login = f'{{"email":"{seed.ADMIN_EMAIL}","password":"{credentials.admin_password}"}}'
    lines = [
        ("gateway", gateway),
        ("admin", f"{seed.ADMIN_EMAIL} / {credentials.admin_password} (account {seed.DEMO_SLUG})"),
        ("SFTP", f"127.0.0.1:{sftp}, login {seed.SFTP_USERNAME} / {credentials.sftp_password}"),
        ("upload", f"echo 'put {demo_file} {target}' | sftp -P {sftp} {sftp_login}"),
        ("token", f"curl -s --json '{login}' {gateway}/v1/auth/token"),
        ("records", f'curl -s -H "Authorization: Bearer $TOKEN" {gateway}/v1/records/customer'),
        ("database", stack.database_url),
        ("NATS", stack.nats_url),
    ]
    console.rule("Canopy is running (Ctrl-C stops everything)")
    for label, value in lines:
        console.print(f"[bold]{label:>9}[/bold]  {value}", soft_wrap=True, highlight=False)
    console.rule()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--var-dir", type=Path, default=REPO / "var")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run(args.var_dir)


if __name__ == "__main__":
    main()
