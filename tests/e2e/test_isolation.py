"""No request crosses an account; no token, a bad token or a stranger's account gets nothing."""

import asyncio
import time
import uuid

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devstack.stack import Stack
from tests.e2e.conftest import AccountAdmin, canopy, new_account, sftp_upload, wait_for_file
from tests.e2e.test_file_to_records import GOOD_AND_BAD, set_up_drop_zone

SCHEMAS = ("identity", "tenancy", "ingestion", "canonical", "audit")


@pytest.fixture(scope="module")
async def two_accounts(stack: Stack) -> dict:
    first = await new_account(stack, "first")
    tenant, zone, username = await set_up_drop_zone(stack, first)
    await sftp_upload(stack, username, "a-long-sftp-password", "customers_iso.csv", GOOD_AND_BAD)
    [file] = await wait_for_file(first, "customers_iso.csv")
    second = await new_account(stack, "second")
    return {"first": first, "second": second, "tenant": tenant, "zone": zone, "file": file}


LISTS = [
    ("/v1/tenants", "tenants"),
    ("/v1/dropzones", "dropzones"),
    ("/v1/files", "files"),
    ("/v1/records/customer", "records"),
    ("/v1/source-schemas", "source_schemas"),
    ("/v1/audit/events", "events"),
]


@pytest.mark.parametrize(("path", "key"), LISTS)
async def test_second_account_lists_none_of_the_firsts_objects(
    two_accounts: dict, path: str, key: str
) -> None:
    first: AccountAdmin = two_accounts["first"]
    second: AccountAdmin = two_accounts["second"]
    firsts = {item.get("id") for item in (await first.get(path, page_size=500))[key]}
    assert firsts, f"the first account should have some {key}"
    seconds = {item.get("id") for item in (await second.get(path, page_size=500))[key]}
    assert not firsts & seconds


async def test_second_account_cannot_read_firsts_objects_by_id(two_accounts: dict) -> None:
    second: AccountAdmin = two_accounts["second"]
    paths = [
        f"/v1/tenants/{two_accounts['tenant']['id']}",
        f"/v1/dropzones/{two_accounts['zone']['id']}",
        f"/v1/files/{two_accounts['file']['id']}",
    ]
    for path in paths:
        response = await second.http.get(path)
        assert response.status_code == 404, (path, response.text)
        assert two_accounts["first"].account_id not in response.text
    rejects = await second.http.get(f"/v1/files/{two_accounts['file']['id']}/rejects")
    assert rejects.status_code == 404 or rejects.json()["rejects"] == []


async def test_second_account_cannot_write_into_firsts_objects(two_accounts: dict) -> None:
    second: AccountAdmin = two_accounts["second"]
    code = await second.http.post(
        "/v1/tenant-mapping-codes",
        json={"tenant_id": two_accounts["tenant"]["id"], "source": "dms", "code": "X1"},
    )
    assert code.status_code == 404, code.text
    login = await second.http.post(
        f"/v1/dropzones/{two_accounts['zone']['id']}/logins",
        json={"username": f"intruder-{uuid.uuid4().hex[:6]}", "password": "a-long-sftp-password"},
    )
    assert login.status_code == 404, login.text


async def test_naming_an_account_the_user_is_not_in_is_refused(two_accounts: dict) -> None:
    second: AccountAdmin = two_accounts["second"]
    for account in (
        two_accounts["first"].slug,
        two_accounts["first"].account_id,
        "no-such-account",
    ):
        response = await second.http.get("/v1/tenants", headers={"X-Account": account})
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_requests_without_a_valid_token_are_refused(stack: Stack, two_accounts: dict) -> None:
    first: AccountAdmin = two_accounts["first"]
    real = first.http.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)
    forged = jwt.encode(
        claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]}
    )
    expired_claims = {**claims, "exp": int(time.time()) - 10}
    expired = jwt.encode(
        expired_claims,
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": header["kid"]},
    )
    async with httpx.AsyncClient(base_url=stack.gateway_url) as anonymous:
        for headers in (
            {},
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": "Bearer not.a.jwt"},
            {"Authorization": f"Basic {real}"},
        ):
            response = await anonymous.get("/v1/tenants", headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_spoofed_context_header_is_ignored(stack: Stack, two_accounts: dict) -> None:
    second: AccountAdmin = two_accounts["second"]
    response = await second.http.get(
        "/v1/tenants",
        headers={"x-canopy-context": "spoofed", "X-Tenant-Scope": two_accounts["tenant"]["id"]},
    )
    assert response.status_code == 200
    assert response.json()["tenants"] == []


async def test_suspended_account_is_refused_then_back_after_reactivation(stack: Stack) -> None:
    admin = await new_account(stack, "unpaid")
    assert (await admin.http.get("/v1/tenants")).status_code == 200
    assert (
        canopy(stack, "accounts", "suspend", admin.slug, "--reason", "unpaid bill").returncode == 0
    )
    refused = None
    for _ in range(50):
        refused = await admin.http.get("/v1/tenants")
        if refused.status_code == 403:
            break
        await asyncio.sleep(0.1)
    assert refused is not None and refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "suspended" in refused.json()["title"].lower()
    assert canopy(stack, "accounts", "reactivate", admin.slug).returncode == 0
    for _ in range(50):
        if (await admin.http.get("/v1/tenants")).status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert (await admin.http.get("/v1/tenants")).status_code == 200


def customer_data_tables(conn: psycopg.Connection) -> list[tuple[str, str, bool, bool]]:
    return conn.execute(
        """
        SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a
          ON a.attrelid = c.oid AND a.attname = 'account_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
        """,
        [list(SCHEMAS)],
    ).fetchall()


async def test_every_customer_data_table_forces_row_level_security(
    stack: Stack, e2e_database_url: str
) -> None:
    with psycopg.connect(e2e_database_url) as conn:
        tables = customer_data_tables(conn)
        assert {schema for schema, *_ in tables} == set(SCHEMAS)
        assert [t for t in tables if not (t[2] and t[3])] == []
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname LIKE ANY(%s)",
            [[f"{s}\\_app" for s in SCHEMAS] + [f"{s}\\_owner" for s in SCHEMAS]],
        ).fetchall()
    assert len(roles) == 2 * len(SCHEMAS)
    assert [r for r in roles if r[1] or r[2]] == []


async def test_every_table_with_a_tenant_column_limits_reads_to_the_callers_tenants(
    stack: Stack, e2e_database_url: str
) -> None:
    with psycopg.connect(e2e_database_url) as conn:
        unguarded = conn.execute(
            """
            SELECT n.nspname || '.' || c.relname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a
              ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
              AND NOT EXISTS (
                SELECT 1 FROM pg_policy p
                WHERE p.polrelid = c.oid AND NOT p.polpermissive AND p.polcmd IN ('r', '*'))
            """,
            [list(SCHEMAS)],
        ).fetchall()
    assert unguarded == []


async def test_app_role_without_context_sees_no_rows(
    two_accounts: dict, stack: Stack, e2e_database_url: str
) -> None:
    with psycopg.connect(e2e_database_url) as conn:
        tables = [(s, t) for s, t, *_ in customer_data_tables(conn)]
        populated = [
            (s, t) for s, t in tables if conn.execute(f"SELECT count(*) FROM {s}.{t}").fetchone()[0]
        ]
    assert len(populated) >= 8
    for schema in SCHEMAS:
        app_url = psycopg.conninfo.make_conninfo(e2e_database_url, user=f"{schema}_app")
        with psycopg.connect(app_url) as conn:
            for owner_schema, table in populated:
                if owner_schema == schema:
                    assert (
                        conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0] == 0
                    ), table
