"""The demo account `make run` seeds: tenant, mapping code, source schema, drop zone, login.

Everything but the account goes through the public HTTP API, as a customer's admin would do it.
Running it again reuses what is already there.
"""

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack.stack import kept_secrets

DEMO_SLUG = "demo"
ADMIN_EMAIL = "admin@demo.example"
SFTP_USERNAME = "demo-dms"
SOURCE = "dms_customers"
DEALER_CODE = "N01"

DMS_CUSTOMERS = {
    "name": SOURCE,
    "canonical_schema": "customer",
    "columns": [
        "customer_id",
        "dealer_code",
        "first_name",
        "last_name",
        "email",
        "phone",
        "birth_date",
        "gender",
        "city",
        "postal_code",
    ],
    "source_id_column": "customer_id",
    "tenant_code_column": "dealer_code",
    "field_mappings": [
        {"canonical_field": "first_name", "source_column": "first_name", "transforms": ["trim"]},
        {"canonical_field": "last_name", "source_column": "last_name", "transforms": ["trim"]},
        {"canonical_field": "email", "source_column": "email", "transforms": ["trim", "lower"]},
        {"canonical_field": "phone", "source_column": "phone", "transforms": ["trim"]},
        {"canonical_field": "date_of_birth", "source_column": "birth_date"},
        {"canonical_field": "gender", "source_column": "gender", "value_map": "gender"},
        {"canonical_field": "city", "source_column": "city", "transforms": ["trim"]},
        {"canonical_field": "postal_code", "source_column": "postal_code", "transforms": ["trim"]},
    ],
    "value_maps": [
        {"name": "gender", "strict": True, "entries": {"F": "female", "M": "male", "D": "other"}}
    ],
}


@dataclass(frozen=True)
class DemoCredentials:
    """The demo's passwords: generated on the first `make run`, kept beside its data."""

    admin_password: str
    sftp_password: str

    @classmethod
    def kept_in(cls, var_dir: Path) -> "DemoCredentials":
        kept = kept_secrets(
            var_dir / "demo-credentials.env",
            {"ADMIN_PASSWORD": _new_password, "SFTP_PASSWORD": _new_password},
        )
        return cls(admin_password=kept["ADMIN_PASSWORD"], sftp_password=kept["SFTP_PASSWORD"])


def _new_password() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Demo:
    account_id: str
    dropzone_id: str


def seed(gateway_url: str, env: dict[str, str], credentials: DemoCredentials) -> Demo:
    """Seed through the operator CLI (configured by `env`) and the gateway at `gateway_url`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "canopyctl",
            "accounts",
            "create",
            "--name",
            "Demo Motors Group",
            "--slug",
            DEMO_SLUG,
            "--admin-email",
            ADMIN_EMAIL,
            "--admin-password",
            credentials.admin_password,
        ],
        env={**os.environ, **env},
        check=False,  # ALREADY_EXISTS when the demo account is there from an earlier run
    )
    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        sign_in = {"email": ADMIN_EMAIL, "password": credentials.admin_password}
        token = _ok(http.post("/v1/auth/token", json=sign_in))
        http.headers.update(
            {"Authorization": f"Bearer {token['access_token']}", "X-Account": DEMO_SLUG}
        )
        tenant = _find_or_create(
            http, "/v1/tenants", "tenants", "name", {"name": "Demo Motors North"}
        )
        codes = _ok(http.get("/v1/tenant-mapping-codes", params={"source": SOURCE}))["codes"]
        if not any(c["code"] == DEALER_CODE for c in codes):
            _ok(
                http.post(
                    "/v1/tenant-mapping-codes",
                    json={"tenant_id": tenant["id"], "source": SOURCE, "code": DEALER_CODE},
                )
            )
        _find_or_create(http, "/v1/source-schemas", "source_schemas", "name", DMS_CUSTOMERS)
        zone = _find_or_create(
            http,
            "/v1/dropzones",
            "dropzones",
            "name",
            {
                "name": "dms",
                "tenant_ids": [tenant["id"]],
                "routes": [{"pattern": "customers_*.csv", "source_schema": SOURCE}],
            },
        )
        login = http.post(
            f"/v1/dropzones/{zone['id']}/logins",
            json={"username": SFTP_USERNAME, "password": credentials.sftp_password},
        )
        if login.status_code != 409:
            _ok(login)
        return Demo(account_id=tenant["account_id"], dropzone_id=zone["id"])


def _find_or_create(http: httpx.Client, path: str, key: str, name_field: str, body: dict) -> dict:
    for item in _ok(http.get(path, params={"page_size": 500}))[key]:
        if item[name_field] == body[name_field]:
            return item
    return _ok(http.post(path, json=body))


def _ok(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.text}"
        )
    return response.json()
