"""The authz version: bumped with every change that alters an answer, checkable in one read."""

import asyncio
import uuid

import grpc
import psycopg

from canopy.identity.v1 import identity_pb2
from services.identity.bootstrap import SCHEMA
from services.identity.config import IdentityConfig
from services.identity.tests.helpers import (
    create_user,
    grant,
    metadata,
    resolve,
    rpc_error,
    service_metadata,
)
from services.runtime.config import libpq_url
from services.runtime.context import ContextTokens


async def version(stub, tokens: ContextTokens, account: uuid.UUID) -> int:  # type: ignore[no-untyped-def]
    answer = await stub.GetAuthzVersion(
        identity_pb2.GetAuthzVersionRequest(account_id=str(account)),
        metadata=service_metadata(tokens),
    )
    assert answer.account_id == str(account)
    return answer.version


async def test_every_authorization_change_moves_the_version(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    assert await version(stub, tokens, account) == 0
    meta = metadata(tokens, account)
    seen = []

    user = await create_user(stub, tokens, account, role="staff")
    seen.append(await version(stub, tokens, account))
    made = await grant(stub, tokens, account, user.id, "auditor")
    seen.append(await version(stub, tokens, account))
    await stub.RevokeGrant(identity_pb2.RevokeGrantRequest(grant_id=made.id), metadata=meta)
    seen.append(await version(stub, tokens, account))
    role = await stub.CreateRole(
        identity_pb2.CreateRoleRequest(name="night-shift", clone_from="staff"), metadata=meta
    )
    await grant(stub, tokens, account, user.id, "night-shift")
    seen.append(await version(stub, tokens, account))
    await stub.UpdateRole(
        identity_pb2.UpdateRoleRequest(
            role_id=role.id, permissions=["canonical.records:read"], replace_permissions=True
        ),
        metadata=meta,
    )
    seen.append(await version(stub, tokens, account))
    await create_user(stub, tokens, account, role="admin")
    await stub.DeactivateUser(identity_pb2.DeactivateUserRequest(user_id=user.id), metadata=meta)
    seen.append(await version(stub, tokens, account))

    assert seen == sorted(set(seen)) and seen[0] > 0
    assert (await resolve(stub, tokens, user.id, str(account))).authz_version == seen[-1]


async def test_an_idempotent_grant_does_not_move_the_version(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    user = await create_user(stub, tokens, account, role="staff")
    before = await version(stub, tokens, account)
    await grant(stub, tokens, account, user.id, "staff")
    assert await version(stub, tokens, account) == before


async def test_versions_are_per_account(stub, tokens: ContextTokens) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await create_user(stub, tokens, second, role="staff")
    before = await version(stub, tokens, second)
    user = await create_user(stub, tokens, first, role="staff")
    await grant(stub, tokens, first, user.id, "auditor")
    assert await version(stub, tokens, second) == before


async def test_the_version_is_for_services_only(stub, tokens: ContextTokens) -> None:
    account = uuid.uuid4()
    error = await rpc_error(
        stub.GetAuthzVersion(
            identity_pb2.GetAuthzVersionRequest(account_id=str(account)),
            metadata=metadata(tokens, account),
        )
    )
    malformed = await rpc_error(
        stub.GetAuthzVersion(
            identity_pb2.GetAuthzVersionRequest(account_id="acme"),
            metadata=service_metadata(tokens),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_no_allow_is_answered_with_a_version_read_after_a_revoke_committed(
    stub, tokens: ContextTokens
) -> None:
    """A gateway-like cache: it keeps a Resolution while GetAuthzVersion returns its version.

    While one task revokes, others loop Resolve and GetAuthzVersion. No Resolution that allows
    may carry a version equal to (or newer than) one read after the revoke returned, and every
    Resolve that starts after the revoke returned must deny.
    """
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="admin")  # so the revoke is not the last admin
    user = await create_user(stub, tokens, account, role="customer")
    made = await grant(stub, tokens, account, user.id, "auditor")
    permission = "audit.events:read"
    revoked = asyncio.Event()
    answers: list[tuple[bool, int, bool]] = []  # (allowed, version, started after revoke)
    versions_after: list[int] = []

    async def resolver() -> None:
        for _ in range(60):
            started_after = revoked.is_set()
            result = await resolve(stub, tokens, user.id, str(account))
            answers.append((permission in result.permissions, result.authz_version, started_after))
            if started_after and len(answers) > 20:
                return

    async def checker() -> None:
        for _ in range(60):
            after = revoked.is_set()
            current = await version(stub, tokens, account)
            if after:
                versions_after.append(current)
            await asyncio.sleep(0)

    async def revoker() -> None:
        await asyncio.sleep(0.02)
        await stub.RevokeGrant(
            identity_pb2.RevokeGrantRequest(grant_id=made.id), metadata=metadata(tokens, account)
        )
        revoked.set()

    await asyncio.gather(resolver(), resolver(), checker(), revoker())

    assert versions_after, "no version was read after the revoke"
    floor = min(versions_after)
    assert any(allowed for allowed, _, _ in answers), "the race never saw the grant"
    assert not [a for a in answers if a[0] and a[1] >= floor]
    assert not [a for a in answers if a[0] and a[2]]


async def test_the_unscoped_version_read_opens_no_other_rows(
    stub, tokens: ContextTokens, identity_config: IdentityConfig
) -> None:
    account = uuid.uuid4()
    await create_user(stub, tokens, account, role="staff")
    app_url = libpq_url(identity_config.app_url(SCHEMA))
    with psycopg.connect(app_url, autocommit=True) as conn:
        # The counter, through the function, with no scope at all...
        (through,) = conn.execute("SELECT identity.authz_version_of(%s)", (account,)).fetchone()  # type: ignore[misc]
        # ...but the table itself stays closed, and the function returns nothing else.
        (direct,) = conn.execute("SELECT count(*) FROM identity.account_authz").fetchone()  # type: ignore[misc]
        (unknown,) = conn.execute(
            "SELECT identity.authz_version_of(%s)", (uuid.uuid4(),)
        ).fetchone()  # type: ignore[misc]
    assert through == await version(stub, tokens, account) > 0
    assert direct == 0 and unknown == 0
    with psycopg.connect(libpq_url(identity_config.database_url), autocommit=True) as admin:
        role = admin.execute(
            "SELECT has_function_privilege('public', 'identity.authz_version_of(uuid)', 'EXECUTE')"
        ).fetchone()
    assert role == (False,)
