"""`canopy <group> <command>`: operator commands against a running stack."""

import argparse
import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
from google.protobuf import json_format
from rich.console import Console

from canopy.canonical.v1 import canonical_pb2, canonical_pb2_grpc
from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
from canopy.tenancy.v1 import tenancy_pb2, tenancy_pb2_grpc
from services.runtime.config import RuntimeConfig
from services.runtime.context import CallContext, ContextTokens, generate_context_key
from services.runtime.keywrap import generate_kek

SERVICES = ("tenancy", "identity", "ingestion", "canonical", "audit")
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "services" / "canonical" / "fixtures"
FIXTURES_PERMISSION = "canonical.fixtures:manage"
OPERATOR_PERMISSIONS = (
    "tenancy.accounts:create",
    "tenancy.accounts:read",
    "tenancy.accounts:manage",
)
console = Console(stderr=True)


def operator(account_id: uuid.UUID | None, *permissions: str) -> CallContext:
    return CallContext(
        principal_id="operator:cli",
        principal_kind="operator",
        account_id=account_id,
        permissions=frozenset(permissions),
    )


async def create_account(config: RuntimeConfig, args: argparse.Namespace) -> None:
    tokens = ContextTokens(config.context_key)
    async with (
        grpc.aio.insecure_channel(config.tenancy_address) as tenancy_channel,
        grpc.aio.insecure_channel(config.identity_address) as identity_channel,
    ):
        tenancy = tenancy_pb2_grpc.TenancyServiceStub(tenancy_channel)
        account = await tenancy.CreateAccount(
            tenancy_pb2.CreateAccountRequest(name=args.name, slug=args.slug, tier=args.tier),
            metadata=tokens.metadata(operator(None, *OPERATOR_PERMISSIONS)),
        )
        identity = identity_pb2_grpc.IdentityServiceStub(identity_channel)
        admin = await identity.CreateUser(
            identity_pb2.CreateUserRequest(
                email=args.admin_email, password=args.admin_password, role="admin"
            ),
            metadata=tokens.metadata(operator(uuid.UUID(account.id), "identity.users:write")),
        )
    console.print(f"account [bold]{account.slug}[/bold] created: {account.id}")
    console.print(f"admin {admin.email} ({admin.id})")
    print(account.id)


async def set_account_status(config: RuntimeConfig, args: argparse.Namespace) -> None:
    tokens = ContextTokens(config.context_key)
    async with grpc.aio.insecure_channel(config.tenancy_address) as channel:
        tenancy = tenancy_pb2_grpc.TenancyServiceStub(channel)
        metadata = tokens.metadata(operator(None, *OPERATOR_PERMISSIONS))
        found = await tenancy.GetAccount(
            tenancy_pb2.GetAccountRequest(account=args.account), metadata=metadata
        )
        if args.command == "suspend":
            request = tenancy_pb2.SuspendAccountRequest(account_id=found.id, reason=args.reason)
            account = await tenancy.SuspendAccount(request, metadata=metadata)
        else:
            request = tenancy_pb2.ReactivateAccountRequest(account_id=found.id)
            account = await tenancy.ReactivateAccount(request, metadata=metadata)
    console.print(f"account {account.slug}: {tenancy_pb2.AccountStatus.Name(account.status)}")


def fixture_files(paths: list[str]) -> list[Path]:
    """The JSON fixture files named, or in the folders named (default: the shipped ones)."""
    found: list[Path] = []
    for name in paths or [str(FIXTURES_DIR)]:
        path = Path(name)
        found += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return found


def fixture_items(path: Path) -> list[canonical_pb2.ReferenceItem]:
    """The items of one fixture file ({"kind", "version", "items"}); the service derives and
    checks each natural key."""
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict) or not isinstance(content.get("items"), list):
        raise ValueError(f"{path}: a fixture is an object with kind, version and items")
    items = []
    for item in content["items"]:
        message = canonical_pb2.ReferenceItem(
            kind=str(content.get("kind", "")), fixture_version=int(content.get("version", 0))
        )
        message.data.update(item)
        items.append(message)
    return items


async def load_fixtures(config: RuntimeConfig, args: argparse.Namespace) -> None:
    tokens = ContextTokens(config.context_key)
    items = [item for path in fixture_files(args.path) for item in fixture_items(path)]
    async with grpc.aio.insecure_channel(config.canonical_address) as channel:
        canonical = canonical_pb2_grpc.CanonicalServiceStub(channel)
        loaded = await canonical.LoadFixtures(
            canonical_pb2.LoadFixturesRequest(items=items),
            metadata=tokens.metadata(operator(None, FIXTURES_PERMISSION)),
        )
    console.print(
        f"fixtures loaded: {loaded.created} created, {loaded.updated} updated,"
        f" {loaded.unchanged} unchanged"
    )


async def dump_fixtures(config: RuntimeConfig, args: argparse.Namespace) -> None:
    tokens = ContextTokens(config.context_key)
    async with grpc.aio.insecure_channel(config.canonical_address) as channel:
        canonical = canonical_pb2_grpc.CanonicalServiceStub(channel)
        dumped = await canonical.DumpFixtures(
            canonical_pb2.DumpFixturesRequest(kind=args.kind),
            metadata=tokens.metadata(operator(None, FIXTURES_PERMISSION)),
        )
    by_kind: dict[str, list[canonical_pb2.ReferenceItem]] = {}
    for item in dumped.items:
        by_kind.setdefault(item.kind, []).append(item)
    for kind, items in sorted(by_kind.items()):
        fixture = {
            "kind": kind,
            "version": max(i.fixture_version for i in items),
            "items": [json_format.MessageToDict(i.data) for i in items],
        }
        text = json.dumps(fixture, ensure_ascii=False, indent=2) + "\n"
        if args.out:
            target = Path(args.out) / f"{kind}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            console.print(f"{kind}: {len(items)} items -> {target}")
        else:
            print(text, end="")


def migrate(args: argparse.Namespace) -> None:
    for service in args.service or SERVICES:
        subprocess.run([sys.executable, "-m", f"services.{service}", "migrate"], check=True)
        console.print(f"migrated {service}")


def generate_keys(args: argparse.Namespace) -> None:
    print(f"CANOPY_CONTEXT_KEY={generate_context_key()}")
    print(f"CANOPY_KEY_ENCRYPTION_KEY={generate_kek()}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="canopy", description=__doc__)
    groups = root.add_subparsers(dest="group", required=True)

    accounts = groups.add_parser("accounts", help="create, suspend and reactivate accounts")
    commands = accounts.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create an account and its first admin")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True)
    create.add_argument("--tier", default="standard")
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-password", required=True)
    for verb in ("suspend", "reactivate"):
        command = commands.add_parser(verb, help=f"{verb} an account (by id or slug)")
        command.add_argument("account")
        if verb == "suspend":
            command.add_argument("--reason", default="")

    schemas = groups.add_parser(
        "migrate", help="migrate every service's schema (or the named ones)"
    )
    schemas.add_argument("service", nargs="*", help=f"any of {', '.join(SERVICES)}")

    groups.add_parser("keys", help="print fresh CANOPY_CONTEXT_KEY and CANOPY_KEY_ENCRYPTION_KEY")

    fixtures = groups.add_parser("fixtures", help="load and dump reference data (fixtures)")
    verbs = fixtures.add_subparsers(dest="command", required=True)
    load = verbs.add_parser("load", help="load fixture files by natural key (idempotent)")
    load.add_argument(
        "path", nargs="*", help="JSON files or folders (default: the shipped fixtures)"
    )
    dump = verbs.add_parser("dump", help="print (or write) the stored reference data")
    dump.add_argument("--kind", default="", help="one kind only (default: every kind)")
    dump.add_argument("--out", default="", help="write one <kind>.json per kind into this folder")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = RuntimeConfig()
    try:
        if args.group == "accounts" and args.command == "create":
            asyncio.run(create_account(config, args))
        elif args.group == "accounts":
            asyncio.run(set_account_status(config, args))
        elif args.group == "migrate":
            migrate(args)
        elif args.group == "keys":
            generate_keys(args)
        elif args.group == "fixtures" and args.command == "load":
            asyncio.run(load_fixtures(config, args))
        elif args.group == "fixtures":
            asyncio.run(dump_fixtures(config, args))
    except grpc.aio.AioRpcError as error:
        console.print(f"[red]{error.code().name}[/red]: {error.details()}")
        return 1
    except (OSError, ValueError) as error:
        console.print(f"[red]error[/red]: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
