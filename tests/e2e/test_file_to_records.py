"""One customer file travels from an SFTP upload to canonical records only its account can read."""

import asyncio
import json
import uuid

import asyncssh
import psycopg
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import AccountAdmin, new_account, sftp_upload, wait_for_file

HEADER = (
    "customer_id,dealer_code,first_name,last_name,email,phone,birth_date,gender,city,postal_code"
)
GOOD_AND_BAD = (
    "\n".join(
        [
            HEADER,
            "C-1,N01,Anna,Berg,anna.berg@example.com,+4930123456,1984-03-12,F,Berlin,10115",
            "C-2,N01,Jonas,Keller,jonas@example.com,+4940987654,1979-11-02,M,Hamburg,20095",
            "C-3,N01, Mira ,Schulz,MIRA@example.com,+4989555123,1991-07-23,F,Munich,80331",
            "C-4,N01,Paul,,not-an-email,+4969111222,1988-13-30,X,Frankfurt,60311",
            "C-5,ZZ9,Lena,Fischer,lena@example.com,+4922133344,1995-05-05,F,Cologne,50667",
            "C-6,N01,too,few,fields",
        ]
    ).encode()
    + b"\n"
)


def source_schema(name: str) -> dict:
    return {
        "name": name,
        "canonical_schema": "customer",
        "columns": HEADER.split(","),
        "source_id_column": "customer_id",
        "tenant_code_column": "dealer_code",
        "field_mappings": [
            {
                "canonical_field": "first_name",
                "source_column": "first_name",
                "transforms": ["trim"],
            },
            {"canonical_field": "last_name", "source_column": "last_name", "transforms": ["trim"]},
            {"canonical_field": "email", "source_column": "email", "transforms": ["trim", "lower"]},
            {"canonical_field": "phone", "source_column": "phone"},
            {"canonical_field": "date_of_birth", "source_column": "birth_date"},
            {"canonical_field": "gender", "source_column": "gender", "value_map": "gender"},
            {"canonical_field": "city", "source_column": "city"},
            {"canonical_field": "postal_code", "source_column": "postal_code"},
        ],
        "value_maps": [{"name": "gender", "strict": True, "entries": {"F": "female", "M": "male"}}],
    }


async def set_up_drop_zone(stack: Stack, admin: AccountAdmin) -> tuple[dict, dict, str]:
    """Tenant with dealer code N01, source schema, drop zone routing customers_*.csv, login."""
    tenant = await admin.post("/v1/tenants", {"name": "North"})
    await admin.post(
        "/v1/tenant-mapping-codes", {"tenant_id": tenant["id"], "source": "dms", "code": "N01"}
    )
    schema = source_schema("dms")
    await admin.post("/v1/source-schemas", schema)
    zone = await admin.post(
        "/v1/dropzones",
        {
            "name": "dms",
            "tenant_ids": [tenant["id"]],
            "routes": [{"pattern": "customers_*.csv", "source_schema": "dms"}],
        },
    )
    username = f"sftp-{uuid.uuid4().hex[:10]}"
    await admin.post(
        f"/v1/dropzones/{zone['id']}/logins",
        {"username": username, "password": "a-long-sftp-password"},
    )
    return tenant, zone, username


@pytest.fixture(scope="module")
async def loaded(stack: Stack) -> dict:
    """Account A with one file loaded (partially: good and bad rows), shared by the tests below."""
    admin = await new_account(stack)
    tenant, zone, username = await set_up_drop_zone(stack, admin)
    await sftp_upload(
        stack, username, "a-long-sftp-password", "customers_2026-11-21.csv", GOOD_AND_BAD
    )
    [file] = await wait_for_file(admin, "customers_2026-11-21.csv")
    return {"admin": admin, "tenant": tenant, "zone": zone, "username": username, "file": file}


async def test_file_loads_good_rows_and_rejects_bad_ones(loaded: dict) -> None:
    file = loaded["file"]
    assert file["status"] == "FILE_STATUS_PARTIALLY_LOADED", file
    assert (int(file["rows_total"]), int(file["rows_created"]), int(file["rows_rejected"])) == (
        6,
        3,
        3,
    )
    assert file["sha256"] and int(file["size_bytes"]) == len(GOOD_AND_BAD)


async def test_records_are_decrypted_for_the_reader(loaded: dict) -> None:
    admin: AccountAdmin = loaded["admin"]
    records = (await admin.get("/v1/records/customer"))["records"]
    by_source_id = {r["source_id"]: r for r in records}
    assert set(by_source_id) == {"C-1", "C-2", "C-3"}
    mira = by_source_id["C-3"]["fields"]
    assert mira["first_name"] == "Mira" and mira["email"] == "mira@example.com"
    assert mira["gender"] == "female" and mira["date_of_birth"] == "1991-07-23"
    assert all(r["tenant_id"] == loaded["tenant"]["id"] for r in records)


async def test_sensitive_fields_are_stored_encrypted(loaded: dict, e2e_database_url: str) -> None:
    with psycopg.connect(e2e_database_url) as conn:
        rows = conn.execute(
            "SELECT data->>'email', data::text FROM canonical.records WHERE account_id = %s",
            [loaded["admin"].account_id],
        ).fetchall()
    assert len(rows) == 3
    for email, whole in rows:
        assert email and "@" not in email
        assert "example.com" not in whole and "+49" not in whole


async def test_rejects_name_the_row_and_every_reason(loaded: dict) -> None:
    admin: AccountAdmin = loaded["admin"]
    rejects = (await admin.get(f"/v1/files/{loaded['file']['id']}/rejects"))["rejects"]
    by_row = {int(r["row_number"]): " | ".join(r["reasons"]) for r in rejects}
    assert set(by_row) == {5, 6, 7}, by_row  # the header is row 1
    assert "last_name" in by_row[5] and "email" in by_row[5] and "date_of_birth" in by_row[5]
    assert "gender" in by_row[5]
    assert "ZZ9" in by_row[6]
    assert "field" in by_row[7]


async def download_when_there(stack: Stack, username: str, path: str) -> bytes:
    """A file of the drop zone over SFTP, once ingestion has written it (receipts, rejects)."""
    for _ in range(100):
        async with asyncssh.connect(
            "127.0.0.1",
            stack.ports.sftp,
            username=username,
            password="a-long-sftp-password",
            known_hosts=None,
            client_keys=None,
        ) as connection:
            async with connection.start_sftp_client() as sftp:
                if await sftp.exists(path):
                    async with sftp.open(path, "rb") as remote:
                        return await remote.read()
        await asyncio.sleep(0.3)
    raise AssertionError(f"{path} never appeared")


async def test_receipt_and_rejects_file_appear_in_the_drop_zone(stack: Stack, loaded: dict) -> None:
    name = "customers_2026-11-21.csv"
    receipt = json.loads(
        await download_when_there(stack, loaded["username"], f"receipts/{name}.json")
    )
    assert receipt["sha256"] == loaded["file"]["sha256"]
    assert receipt["status"] in {"partially_loaded", "FILE_STATUS_PARTIALLY_LOADED"}
    rejects = (
        await download_when_there(stack, loaded["username"], f"rejects/{name}.rejects.csv")
    ).decode()
    header, *lines = rejects.splitlines()
    assert header.startswith("row_number,column,reason")
    assert any(line.startswith("5,") and "email" in line for line in lines), rejects
    assert any(line.startswith("6,") and "ZZ9" in line for line in lines), rejects
    assert "not-an-email" not in rejects  # email is sensitive: its original value is never kept


async def test_same_file_again_is_a_duplicate_and_changes_nothing(
    stack: Stack, loaded: dict
) -> None:
    admin: AccountAdmin = loaded["admin"]
    before = (await admin.get("/v1/records/customer"))["records"]
    await sftp_upload(
        stack, loaded["username"], "a-long-sftp-password", "customers_2026-11-21.csv", GOOD_AND_BAD
    )
    files = await wait_for_file(admin, "customers_2026-11-21.csv", count=2)
    duplicate = next(f for f in files if f["id"] != loaded["file"]["id"])
    assert duplicate["status"] == "FILE_STATUS_DUPLICATE"
    assert duplicate["duplicate_of"] == loaded["file"]["id"]
    await asyncio.sleep(1)
    assert (await admin.get("/v1/records/customer"))["records"] == before


async def test_every_step_is_on_an_audit_chain_that_verifies(loaded: dict) -> None:
    admin: AccountAdmin = loaded["admin"]
    expected = {
        "canopy.tenancy.account.created",
        "canopy.identity.user.created",
        "canopy.identity.grant.changed",
        "canopy.tenancy.tenant.created",
        "canopy.tenancy.mapping_code.created",
        "canopy.canonical.source_schema.created",
        "canopy.ingestion.dropzone.created",
        "canopy.ingestion.login.created",
        "canopy.ingestion.file.received",
        "canopy.canonical.load.started",
        "canopy.canonical.load.completed",
        "canopy.ingestion.file.status_changed",
    }
    for _ in range(100):
        events = (await admin.get("/v1/audit/events", page_size=500))["events"]
        if expected <= {e["type"] for e in events}:
            break
        await asyncio.sleep(0.2)
    assert expected <= {e["type"] for e in events}
    assert all(e["account_id"] == admin.account_id for e in events)
    received = next(e for e in events if e["type"] == "canopy.ingestion.file.received")
    assert received["payload"]["file_id"] == loaded["file"]["id"]
    verdict = await admin.post("/v1/audit/events:verify", {})
    assert verdict["ok"] is True and int(verdict["events_checked"]) >= len(expected)


@pytest.mark.parametrize(
    ("name", "content", "reason_has"),
    [
        (
            "customers_semicolons.csv",
            HEADER.replace(",", ";").encode() + b"\nC-9;N01;A;B;a@b.co;1;1990-01-01;F;X;1\n",
            "header",
        ),
        (
            "customers_quoting.csv",
            (HEADER + '\nC-9,N01,"Anna,Berg,a@b.co,1,1990-01-01,F,X,1\n').encode(),
            "",
        ),
        (
            "customers_latin1.csv",
            (HEADER + "\nC-9,N01,Jürgen,Müller,j@b.co,1,1990-01-01,M,Köln,1\n").encode("latin-1"),
            "utf-8",
        ),
    ],
)
async def test_malformed_files_fail_alone_with_a_readable_reason(
    stack: Stack, loaded: dict, name: str, content: bytes, reason_has: str
) -> None:
    admin: AccountAdmin = loaded["admin"]
    await sftp_upload(stack, loaded["username"], "a-long-sftp-password", name, content)
    [file] = await wait_for_file(admin, name)
    assert file["status"] in {"FILE_STATUS_FAILED", "FILE_STATUS_PARTIALLY_LOADED"}, file
    rejects = (await admin.get(f"/v1/files/{file['id']}/rejects"))["rejects"]
    reasons = (
        file["status_reason"] + " " + " ".join(r for x in rejects for r in x["reasons"])
    ).lower()
    assert reasons.strip(), file
    assert reason_has in reasons
    good = f"customers_after_{name}"
    await sftp_upload(
        stack,
        loaded["username"],
        "a-long-sftp-password",
        good,
        GOOD_AND_BAD.replace(b"C-", f"{uuid.uuid4().hex[:6]}-".encode()),
    )
    [after] = await wait_for_file(admin, good)
    assert after["status"] == "FILE_STATUS_PARTIALLY_LOADED"
    assert stack.processes.poll() == []
