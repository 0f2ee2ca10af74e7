"""Break-in probes generated from the running gateway's OpenAPI document.

Account A gets real objects of every kind the API can make; account B's admin, with its own
valid token, then calls EVERY operation with A's ids: each path parameter is filled from A's
real ids by name, each body from the schema's required fields (id fields pointing at A's
objects). B must get 404 or 403 with no trace of A's ids or names, and the very answer a random
id gets, so nothing says the object exists. B's lists must show none of A's ids. The same for a
user of A limited to another tenant. A new endpoint is covered without anyone remembering: an
operation whose parameters cannot be filled with A's real ids fails the coverage test.
"""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncssh
import httpx
import pytest

from devstack.stack import Stack
from tests.e2e.conftest import AccountAdmin, new_account, ok, sftp_upload, wait_for_file
from tests.e2e.test_file_to_records import GOOD_AND_BAD, set_up_drop_zone

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
METHODS = ("get", "post", "put", "patch", "delete")
# Path parameters that name shared things (canonical schemas), not an account's objects.
SHARED = {"schema": "customer", "kind": "marques"}
DENIED = {403, 404}
# Fields whose values must be well formed for a service to look any further.
FORMATS = {
    "public_key": lambda: (
        asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    ),
    "email": lambda: f"probe-{uuid.uuid4().hex[:8]}@example.com",
    "password": lambda: "a-long-probe-password",
    "username": lambda: f"probe-{uuid.uuid4().hex[:8]}",
}
# Findings the probes made in other contexts, waiting on their owners: while they fail the test
# reports them as an expected failure; once one is fixed, the test fails until it leaves here.
KNOWN: dict[str, str] = {}
NAME_KEYS = {"name", "slug", "username", "email", "display_name", "domain", "code"}


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def params(self) -> list[str]:
        """Path parameters by key: the name, or `<collection>.id` for a bare `{id}`."""
        return param_keys(self.path)

    @property
    def fields(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)

    @property
    def public(self) -> bool:
        return bool(self.spec.get("x-public"))

    def url(self, values: dict[str, str]) -> str:
        keys = iter(self.params)
        return re.sub(r"{([^}]+)}", lambda m: values[next(keys)], self.path)


def param_keys(path: str) -> list[str]:
    keys = []
    for match in re.finditer(r"{([^}]+)}", path):
        name = match.group(1)
        if name == "id":
            name = path[: match.start()].rstrip("/").rsplit("/", 1)[-1] + ".id"
        keys.append(name)
    return keys


@dataclass
class World:
    document: dict[str, Any]
    a: AccountAdmin
    b: AccountAdmin
    ids: dict[str, str]  # path parameter name -> one of A's real ids
    markers: set[str]  # A's ids and distinctive names, none of which B may ever see
    tenants: dict[str, str]  # "north" (the loaded tenant) and "south"
    tenant_owned: dict[str, str] = field(default_factory=dict)  # params naming North's objects
    skipped: dict[str, str] = field(default_factory=dict)  # creation steps that failed, why

    def operations(self) -> list[Operation]:
        return [
            Operation(method, path, spec)
            for path, methods in self.document["paths"].items()
            for method, spec in methods.items()
            if method in METHODS
        ]


def schema_of(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def has(document: dict[str, Any], method: str, path: str) -> bool:
    return method in document["paths"].get(path, {})


def walk(value: Any) -> list[tuple[str, Any]]:
    """Every (key, scalar) pair in a JSON document."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                found += walk(item)
            else:
                found.append((key, item))
    elif isinstance(value, list):
        for item in value:
            found += walk(item)
    return found


def markers_of(payloads: list[Any]) -> set[str]:
    marks: set[str] = set()
    for payload in payloads:
        for key, value in walk(payload):
            if not isinstance(value, str):
                continue
            marks.update(UUID.findall(value))
            if key in NAME_KEYS and len(value) >= 6:
                marks.add(value)
    return marks


def first_id(payload: Any) -> str | None:
    """The id of the first item of the first list of objects in a list answer."""
    if isinstance(payload, dict):
        for value in payload.values():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                item = value[0]
                return item.get("id") or next(
                    (v for k, v in item.items() if k.endswith("_id") and v), None
                )
    return None


def collection_for(document: dict[str, Any], param: str, path: str) -> str | None:
    """The GET collection that lists what `{param}` names: the path's prefix, or any GET path
    whose last segment is the plural of the parameter (`login_id` -> `.../logins`)."""
    prefix = path.split("{" + param + "}")[0].rstrip("/")
    if has(document, "get", prefix) and "{" not in prefix:
        return prefix
    stem = param.removesuffix("_id").replace("_", "-")
    for candidate in document["paths"]:
        last = candidate.rsplit("/", 1)[-1]
        if has(document, "get", candidate) and (
            last == stem + "s" or last.endswith("-" + stem + "s")
        ):
            return candidate
    return None


async def discover(document: dict[str, Any], a: AccountAdmin, ids: dict[str, str]) -> list[Any]:
    """Fill path parameter names with A's ids by listing A's collections; returns the answers."""
    answers: list[Any] = []
    for _ in range(3):  # nested collections need their parents' ids first
        for path in document["paths"]:
            for name, param in zip(re.findall(r"{([^}]+)}", path), param_keys(path), strict=True):
                if param in ids or param in SHARED:
                    continue
                collection = collection_for(document, name, path)
                if collection is None:
                    continue
                needed = param_keys(collection)
                if any(n not in ids for n in needed):
                    continue
                url = Operation("get", collection, {}).url(ids)
                response = await a.http.get(url, params={"page_size": 100})
                if response.status_code != 200:
                    continue
                answers.append(response.json())
                found = first_id(response.json())
                if found:
                    ids[param] = found
    return answers


async def attempt(skipped: dict[str, str], name: str, call: Any) -> Any:
    """One optional creation step: skipped (and said why) when the platform cannot do it yet."""
    try:
        return await call
    except AssertionError as error:
        skipped[name] = str(error)[:300]
        return None


async def confirm_domain(
    stack: Stack, a: AccountAdmin, domain_id: str, skipped: dict[str, str]
) -> None:
    """What an operator does once they checked the domain's DNS record themselves."""
    import grpc

    from canopy.identity.v1 import identity_pb2, identity_pb2_grpc
    from services.runtime.context import CallContext, ContextTokens

    env = stack.env()
    operator = CallContext(
        principal_id="operator:probe",
        principal_kind="operator",
        account_id=uuid.UUID(a.account_id),
        permissions=frozenset({"identity.domains:write"}),
    )
    metadata = ContextTokens(env["CANOPY_CONTEXT_KEY"]).metadata(operator)
    async with grpc.aio.insecure_channel(env["CANOPY_IDENTITY_ADDRESS"]) as channel:
        try:
            await identity_pb2_grpc.IdentityServiceStub(channel).VerifyDomain(
                identity_pb2.VerifyDomainRequest(domain_id=domain_id, operator_confirmed=True),
                metadata=metadata,
                timeout=10,
            )
        except grpc.RpcError as error:
            skipped["domain verification"] = f"{error.code()}: {error.details()}"


async def populate(stack: Stack, a: AccountAdmin, document: dict[str, Any]) -> World:
    skipped: dict[str, str] = {}
    ids: dict[str, str] = {}
    payloads: list[Any] = []
    tenant, zone, username = await set_up_drop_zone(stack, a)
    south = await a.post("/v1/tenants", {"name": f"South {uuid.uuid4().hex[:6]}"})
    try:
        await sftp_upload(
            stack, username, "a-long-sftp-password", "customers_probe.csv", GOOD_AND_BAD
        )
    except asyncssh.SFTPError:  # drop zones with folders take uploads in incoming/
        await sftp_upload(
            stack, username, "a-long-sftp-password", "incoming/customers_probe.csv", GOOD_AND_BAD
        )
    [uploaded] = await wait_for_file(a, "customers_probe.csv")
    ids.update(tenant_id=tenant["id"], dropzone_id=zone["id"], file_id=uploaded["id"])
    payloads += [tenant, zone, uploaded, south]
    payloads.append(await a.get("/v1/records/customer"))
    logins = await a.http.get(f"/v1/dropzones/{zone['id']}/logins")
    if logins.status_code == 200:
        payloads.append(logins.json())
        ids["login_id"] = first_id(logins.json()) or ""
    if ids.get("login_id") and has(document, "post", "/v1/logins/{login_id}/keys"):
        public = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        key = await attempt(
            skipped,
            "sftp key",
            a.post(f"/v1/logins/{ids['login_id']}/keys", {"public_key": public.strip()}),
        )
        if key:
            ids["key_id"] = key.get("id", "")
            payloads.append(key)
    if has(document, "post", "/v1/users"):
        user = await attempt(
            skipped,
            "user",
            a.post(
                "/v1/users",
                {
                    "email": f"staff-{uuid.uuid4().hex[:8]}@{a.slug}.example",
                    "password": "correct-horse-battery",
                    "role": "staff",
                },
            ),
        )
        if user:
            ids["user_id"] = user["id"]
            payloads.append(user)
    if has(document, "post", "/v1/tenant-groups"):
        group = await attempt(
            skipped, "tenant group", a.post("/v1/tenant-groups", {"name": f"Region {a.slug}"})
        )
        if group:
            ids["group_id"] = group["id"]
            payloads.append(group)
    if has(document, "put", "/v1/tenants/{tenant_id}/location"):
        location = {"location": {"city": "Berlin", "country": "DE"}}
        response = await a.http.put(f"/v1/tenants/{tenant['id']}/location", json=location)
        if response.status_code >= 400:
            response = await a.http.put(
                f"/v1/tenants/{tenant['id']}/location", json=location["location"]
            )
        if response.status_code >= 400:
            skipped["location"] = response.text[:300]
    if has(document, "post", "/v1/service-accounts"):
        robot = await attempt(
            skipped, "service account", a.post("/v1/service-accounts", {"name": f"robot-{a.slug}"})
        )
        if robot:
            ids["service_account_id"] = robot["id"]
            payloads.append(robot)
            created = await attempt(
                skipped,
                "api key",
                a.post(f"/v1/service-accounts/{robot['id']}/api-keys", {"name": "probe"}),
            )
            if created:
                key = created.get("api_key", created)
                ids["api_key_id"] = key.get("id", "")
                payloads.append(key)
    if has(document, "post", "/v1/roles"):
        role = await attempt(
            skipped,
            "role",
            a.post(
                "/v1/roles",
                {
                    "name": f"probe-role-{uuid.uuid4().hex[:6]}",
                    "permissions": ["audit.events:read"],
                },
            ),
        )
        if role:
            ids["role_id"] = role["id"]
            payloads.append(role)
    if has(document, "post", "/v1/domains"):
        domain = await attempt(
            skipped, "domain", a.post("/v1/domains", {"domain": f"{a.slug}.example"})
        )
        if domain:
            ids["domain_id"] = domain["id"]
            payloads.append(domain)
            await confirm_domain(stack, a, domain["id"], skipped)
            rule = await attempt(
                skipped,
                "domain rule",
                a.post(
                    "/v1/domain-rules",
                    {"domain_id": domain["id"], "role": "staff", "scope_type": "account"},
                ),
            )
            if rule:
                ids["rule_id"] = rule["id"]
                payloads.append(rule)
    payloads += await discover(document, a, ids)
    ids = {k: v for k, v in ids.items() if v}
    tenant_owned = {
        k: ids[k] for k in ("tenant_id", "dropzone_id", "file_id", "login_id", "key_id") if k in ids
    }
    markers = markers_of(payloads) | set(ids.values()) | {a.account_id, a.slug}
    return World(
        document=document,
        a=a,
        b=a,  # set by the fixture
        ids=ids,
        markers=markers,
        tenants={"north": tenant["id"], "south": south["id"]},
        tenant_owned=tenant_owned,
        skipped=skipped,
    )


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as anonymous:
        document = ok(await anonymous.get("/openapi.json"))
    a = await new_account(stack, "probe-a")
    built = await populate(stack, a, document)
    built.b = await new_account(stack, "probe-b")
    # Names B sees too (shared vocabulary, presets, canonical fields) are no secret; ids are
    # unique, so none of A's may ever show up for B.
    seen_by_b = []
    for op in list_operations(built):
        response = await built.b.http.get(op.path)
        if response.status_code == 200:
            seen_by_b.append(response.json())
    shared = {v for _, v in walk(seen_by_b) if isinstance(v, str) and not UUID.fullmatch(v)}
    built.markers -= shared
    return built


def example(
    document: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str]
) -> Any:
    """A minimal value for one field; id fields point at A's objects."""
    schema = schema_of(document, schema)
    if name in ids:
        return ids[name]
    if name in FORMATS:
        return FORMATS[name]()
    if name.endswith("_ids") and name[:-1] in ids:
        return [ids[name[:-1]]]
    if "enum" in schema:
        values = schema["enum"]
        return values[1] if len(values) > 1 else values[0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" and "properties" in schema:
        return body_of(document, schema, ids)
    return {
        "string": name.endswith("_id") and str(uuid.uuid4()) or f"probe-{uuid.uuid4().hex[:6]}",
        "integer": 1,
        "number": 1,
        "boolean": False,
        "array": [],
        "object": {},
    }.get(kind, "probe")


def body_of(document: dict[str, Any], schema: dict[str, Any], ids: dict[str, str]) -> dict:
    schema = schema_of(document, schema)
    properties = schema.get("properties", {})
    wanted = set(schema.get("required", [])) | {
        name for name in properties if name in ids or (name.endswith("_ids") and name[:-1] in ids)
    }
    body = {
        name: example(document, properties[name], name, ids)
        for name in wanted
        if name in properties and not properties[name].get("readOnly")
    }
    if "scope_id" in body and "scope_type" in properties:
        body["scope_type"] = "tenant"
        body["scope_id"] = ids.get("tenant_id", body["scope_id"])
    return body


def request_body(world: World, op: Operation, ids: dict[str, str]) -> dict | None:
    content = op.spec.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    body = body_of(world.document, content["schema"], ids)
    for name in op.fields:  # the path gives those
        body.pop(name, None)
    return body


def leaks(world: World, response: httpx.Response, sent: Any = None) -> list[str]:
    """A's ids and names in the answer, except what the caller sent itself (an echo of its own
    input tells it nothing)."""
    echoed = {value for _, value in walk(sent)} if sent is not None else set()
    return sorted(m for m in world.markers - echoed if m in response.text)


def normalized(response: httpx.Response, ids: list[str]) -> tuple[int, str]:
    text = response.text
    for value in ids:
        text = text.replace(value, "<id>")
    return response.status_code, text


async def probe(
    world: World, caller: httpx.AsyncClient, op: Operation, ids: dict[str, str]
) -> str | None:
    """B (or a narrowed user) calls `op` with A's ids; a description of what went wrong."""
    values = {p: SHARED.get(p) or ids[p] for p in op.params}
    body = request_body(world, op, ids)
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = await caller.request(op.method.upper(), op.url(values), **kwargs)
    leaked = leaks(world, response, [values, body])
    if leaked:
        return f"{op.id}: {response.status_code} shows A's {leaked[:3]}"
    if all(p in SHARED for p in op.params):
        return None if response.status_code in (200, *DENIED) else f"{op.id}: {response.text}"
    if response.status_code not in DENIED and not (
        op.method == "get" and response.status_code == 200
    ):
        return f"{op.id}: {response.status_code} {response.text[:300]}"
    randoms = {p: SHARED.get(p) or str(uuid.uuid4()) for p in op.params}
    random_ids = {**ids, **{p: v for p, v in randoms.items() if p not in SHARED}}
    body = request_body(world, op, random_ids)
    kwargs = {} if body is None else {"json": body}
    unknown = await caller.request(op.method.upper(), op.url(randoms), **kwargs)
    real = normalized(response, [values[p] for p in op.params])
    made_up = normalized(unknown, [randoms[p] for p in op.params])
    if real != made_up:
        return f"{op.id}: A's object answers {real}, a made-up id {made_up}"
    return None


def settle(failures: list[str], prefix: str = "") -> None:
    """Fail on new findings; known ones (KNOWN) make an expected failure until they are fixed."""
    found = {f.split(": ", 1)[0]: f for f in failures}
    known = {k: v for k, v in found.items() if f"{prefix}{k}" in KNOWN}
    new = [v for k, v in found.items() if k not in known]
    assert not new, "\n".join(new)
    fixed = [
        k
        for k in KNOWN
        if k.startswith(prefix)
        and k.removeprefix(prefix) not in found
        and (prefix or not k.startswith("tenant "))
    ]
    assert not fixed, f"fixed now, remove from KNOWN: {fixed}"
    if known:
        pytest.xfail("; ".join(f"{k}: {KNOWN[prefix + k]}" for k in known))


def path_operations(world: World) -> list[Operation]:
    return [op for op in world.operations() if op.params and not op.public]


def list_operations(world: World) -> list[Operation]:
    return [
        op
        for op in world.operations()
        if op.method == "get"
        and not op.params
        and not op.public
        and not any(p.get("required") and p["in"] == "query" for p in op.spec["parameters"])
    ]


def reference_operations(world: World) -> list[Operation]:
    """Writes without path parameters whose body names objects by id (fields ending in _id)."""
    found = []
    for op in world.operations():
        if op.method == "get" or op.params or op.public:
            continue
        content = op.spec.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        properties = schema_of(world.document, content["schema"]).get("properties", {})
        if any(name in world.ids or name[:-1] in world.ids for name in properties):
            found.append(op)
    return found


async def test_every_operation_is_probed(world: World) -> None:
    """A new endpoint whose ids A cannot make (or discover) fails here until someone adds it."""
    unprobed = [
        f"{op.id} (no real id of A for {[p for p in op.params if p not in world.ids]})"
        for op in path_operations(world)
        if any(p not in world.ids and p not in SHARED for p in op.params)
    ]
    covered = {op.id for op in path_operations(world) + list_operations(world)}
    covered |= {op.id for op in reference_operations(world)}
    covered |= {op.id for op in world.operations() if op.public}
    # The rest act only in the caller's own account and name nothing of anyone else's.
    own = [op for op in world.operations() if op.id not in covered]
    assert all(op.method != "get" for op in own), [op.id for op in own]
    assert not unprobed, f"{unprobed}; creation steps skipped: {world.skipped}"


async def test_other_accounts_admin_gets_nothing_by_id(world: World) -> None:
    failures = []
    for op in path_operations(world):
        if all(p in world.ids or p in SHARED for p in op.params):
            failure = await probe(world, world.b.http, op, world.ids)
            if failure:
                failures.append(failure)
    settle(failures)


async def test_other_accounts_admin_cannot_point_writes_at_as_objects(world: World) -> None:
    failures = []
    for op in reference_operations(world):
        body = request_body(world, op, world.ids)
        response = await world.b.http.request(op.method.upper(), op.path, json=body)
        if response.status_code not in {400, *DENIED} or leaks(world, response, body):
            failures.append(f"{op.id} {body}: {response.status_code} {response.text[:300]}")
    assert not failures, "\n".join(failures)


async def test_other_accounts_lists_show_none_of_as_objects(world: World) -> None:
    failures = []
    for op in list_operations(world):
        response = await world.b.http.get(op.path)
        leaked = leaks(world, response)
        if response.status_code >= 500 or leaked:
            at = response.text.find(leaked[0]) if leaked else 0
            around = response.text[max(at - 80, 0) : at + 40]
            failures.append(f"{op.id}: {response.status_code} {leaked[:3]} in …{around}")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
async def southerner(stack: Stack, world: World) -> httpx.AsyncClient:
    """A user of A with the admin role on the South tenant only."""
    # Not A's claimed email domain, whose rule would grant staff on the whole account.
    email = f"south-{uuid.uuid4().hex[:8]}@elsewhere-{uuid.uuid4().hex[:6]}.example"
    password = "correct-horse-12"
    user = await world.a.post("/v1/users", {"email": email, "password": password})
    grant = await world.a.http.post(
        "/v1/role-grants",
        json={
            "user_id": user["id"],
            "role": "admin",
            "scope_type": "tenant",
            "scope_id": world.tenants["south"],
        },
    )
    if grant.status_code != 200 or grant.json().get("scope") in ("", "account"):
        pytest.skip(f"identity cannot grant a role on one tenant yet: {grant.text[:200]}")
    http = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30)
    token = ok(await http.post("/v1/auth/token", json={"email": email, "password": password}))
    http.headers["Authorization"] = f"Bearer {token['access_token']}"
    http.headers["X-Account"] = world.a.slug
    return http


async def test_a_user_of_another_tenant_gets_nothing_of_this_tenants(
    world: World, southerner: httpx.AsyncClient
) -> None:
    north = World(
        document=world.document,
        a=world.a,
        b=world.b,
        ids=world.ids,
        markers={v for v in world.tenant_owned.values()},
        tenants=world.tenants,
    )
    failures = []
    for op in path_operations(world):
        owned = [p for p in op.params if p in world.tenant_owned]
        if owned and all(p in world.ids or p in SHARED for p in op.params):
            failure = await probe(north, southerner, op, world.ids)
            if failure:
                failures.append(failure)
    for op in list_operations(world):
        response = await southerner.get(op.path)
        if leaks(north, response):
            failures.append(f"{op.id}: shows {leaks(north, response)[:3]}")
    narrowed = await southerner.get("/v1/tenants", headers={"X-Tenant": world.tenants["north"]})
    if narrowed.status_code != 403:
        failures.append(f"X-Tenant north: {narrowed.status_code}")
    settle(failures, prefix="tenant ")


async def test_forged_and_foreign_credentials_get_nothing_anywhere(
    stack: Stack, world: World
) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    real = world.b.http.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(real, options={"verify_signature": False})
    kid = jwt.get_unverified_header(real)["kid"]
    forger = Ed25519PrivateKey.generate()
    forged = jwt.encode({**claims, "sub": str(uuid.uuid4())}, forger, "EdDSA", {"kid": kid})
    stolen_subject = jwt.encode(claims, forger, "EdDSA", {"kid": kid})
    unsigned = jwt.encode(claims, None, "none")
    failures = []
    async with httpx.AsyncClient(base_url=stack.gateway_url) as anonymous:
        for op in world.operations():
            if op.public:
                continue
            values = {p: SHARED.get(p) or world.ids.get(p, str(uuid.uuid4())) for p in op.params}
            for token in (forged, stolen_subject, unsigned, "cpy_" + uuid.uuid4().hex):
                response = await anonymous.request(
                    op.method.upper(),
                    op.url(values),
                    headers={"Authorization": f"Bearer {token}", "X-Account": world.a.slug},
                )
                if response.status_code != 401 or leaks(world, response):
                    failures.append(f"{op.id}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures[:20])


async def test_another_accounts_token_naming_this_account_is_refused(world: World) -> None:
    failures = []
    for op in world.operations():
        if op.public or op.spec.get("x-authenticated"):
            continue
        values = {p: SHARED.get(p) or world.ids.get(p, str(uuid.uuid4())) for p in op.params}
        body = request_body(world, op, world.ids)
        for headers in ({"X-Account": world.a.slug}, {"X-Account": world.a.account_id}):
            response = await world.b.http.request(
                op.method.upper(), op.url(values), headers=headers, json=body
            )
            if response.status_code != 403 or leaks(world, response):
                failures.append(f"{op.id} {headers}: {response.status_code}")
    assert not failures, "\n".join(failures[:20])


async def test_spoofed_context_headers_change_nothing(stack: Stack, world: World) -> None:
    from services.runtime.context import CallContext, ContextTokens

    tokens = ContextTokens(stack.env()["CANOPY_CONTEXT_KEY"])
    spoofed = tokens.sign(
        CallContext(
            principal_id="operator",
            principal_kind="operator",
            account_id=uuid.UUID(world.a.account_id),
            permissions=frozenset({"tenancy.tenants:read", "ingestion.files:read"}),
        )
    )
    spoof = {
        "x-canopy-context": spoofed,
        "x-correlation-id": "spoof",
        "X-Forwarded-For": "10.0.0.1",
        "X-Tenant-Scope": world.tenants["north"],
        "X-Principal": world.a.account_id,
    }
    async with httpx.AsyncClient(base_url=stack.gateway_url) as anonymous:
        alone = await anonymous.get("/v1/tenants", headers=spoof)
    assert alone.status_code == 401
    for path in ("/v1/tenants", "/v1/files"):
        response = await world.b.http.get(path, headers=spoof)
        assert response.status_code == 200, response.text
        assert not leaks(world, response)
    foreign_tenant = await world.b.http.get(
        "/v1/tenants", headers={"X-Tenant": world.tenants["north"]}
    )
    assert foreign_tenant.status_code in DENIED
    assert not leaks(world, foreign_tenant)


async def test_a_subdomain_that_disagrees_with_the_caller_is_refused(world: World) -> None:
    a_host = {"Host": f"{world.a.slug}.canopy.localhost"}
    b_host = {"Host": f"{world.b.slug}.canopy.localhost"}
    theirs = await world.b.http.get("/v1/tenants", headers=a_host)
    assert theirs.status_code == 403, theirs.text
    assert not leaks(world, theirs)
    conflict = await world.b.http.get("/v1/tenants", headers={**a_host, "X-Account": world.b.slug})
    assert conflict.status_code in (400, 403), conflict.text
    assert conflict.headers["content-type"].startswith("application/problem+json")
    own = await world.b.http.get("/v1/tenants", headers=b_host)
    assert own.status_code == 200, own.text


async def test_a_is_untouched_after_every_probe(world: World) -> None:
    assert (await world.a.get(f"/v1/tenants/{world.ids['tenant_id']}"))["id"]
    assert (await world.a.get(f"/v1/dropzones/{world.ids['dropzone_id']}"))["id"]
