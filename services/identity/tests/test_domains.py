"""Verified email domains and rules: "members at D get role R on group G"."""

import uuid

import grpc

from canopy.identity.v1 import identity_pb2
from services.identity.tests.fakes import FakeDns, FakeTenantDirectory
from services.identity.tests.helpers import (
    PRESET_ROLES,
    create_user,
    metadata,
    resolve,
    rpc_error,
    sign_in,
)
from services.runtime.context import ContextTokens, service_context


def business_domain() -> str:
    return f"dealer-{uuid.uuid4().hex[:10]}.de"


async def verified_domain(stub, tokens, dns: FakeDns, account: uuid.UUID, name: str):  # type: ignore[no-untyped-def]
    meta = metadata(tokens, account)
    domain = await stub.CreateDomain(identity_pb2.CreateDomainRequest(domain=name), metadata=meta)
    dns.records[domain.txt_record_name] = [f'"{domain.txt_record_value}"']
    return await stub.VerifyDomain(
        identity_pb2.VerifyDomainRequest(domain_id=domain.id), metadata=meta
    )


async def test_a_domain_is_verified_by_its_txt_record_only(
    stub, tokens: ContextTokens, dns: FakeDns
) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    name = business_domain()
    domain = await stub.CreateDomain(
        identity_pb2.CreateDomainRequest(domain=f" @{name.upper()} "), metadata=meta
    )

    missing = await rpc_error(
        stub.VerifyDomain(identity_pb2.VerifyDomainRequest(domain_id=domain.id), metadata=meta)
    )
    dns.records[domain.txt_record_name] = ["canopy-domain-verification=someone-elses"]
    wrong = await rpc_error(
        stub.VerifyDomain(identity_pb2.VerifyDomainRequest(domain_id=domain.id), metadata=meta)
    )
    self_confirmed = await rpc_error(
        stub.VerifyDomain(
            identity_pb2.VerifyDomainRequest(domain_id=domain.id, operator_confirmed=True),
            metadata=meta,
        )
    )
    dns.records[domain.txt_record_name].append(domain.txt_record_value)
    verified = await stub.VerifyDomain(
        identity_pb2.VerifyDomainRequest(domain_id=domain.id), metadata=meta
    )

    assert (domain.domain, domain.status) == (name, "pending")
    assert domain.txt_record_name == f"_canopy-challenge.{name}"
    assert missing.code() == wrong.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert self_confirmed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert verified.status == "verified" and verified.verified_at.seconds > 0


async def test_an_operator_can_confirm_a_domain_and_only_one_account_holds_it(
    stub, tokens: ContextTokens, dns: FakeDns
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    name = business_domain()
    await verified_domain(stub, tokens, dns, first, name)
    claim = await stub.CreateDomain(
        identity_pb2.CreateDomainRequest(domain=name), metadata=metadata(tokens, second)
    )
    operator = tokens.metadata(
        service_context("canopyctl", account_id=second, permissions=["identity.domains:write"])
    )

    taken = await rpc_error(
        stub.VerifyDomain(
            identity_pb2.VerifyDomainRequest(domain_id=claim.id, operator_confirmed=True),
            metadata=operator,
        )
    )

    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_consumer_and_malformed_domains_are_refused(stub, tokens: ContextTokens) -> None:
    meta = metadata(tokens, uuid.uuid4())
    for name in ("gmail.com", "GMX.de", "web.de", "proton.me", "outlook.com", "localhost", "a..b"):
        error = await rpc_error(
            stub.CreateDomain(identity_pb2.CreateDomainRequest(domain=name), metadata=meta)
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name


async def test_a_rule_grants_its_role_on_its_group_to_members_of_the_domain(
    stub, tokens: ContextTokens, dns: FakeDns, tenant_tree: FakeTenantDirectory
) -> None:
    account = uuid.uuid4()
    tenant = tenant_tree.add_tenant(account)
    group = tenant_tree.add_group(account, tenant)
    name = business_domain()
    domain = await verified_domain(stub, tokens, dns, account, name)
    meta = metadata(tokens, account)
    existing = await create_user(stub, tokens, account, email=f"early@{name}")

    rule = await stub.CreateDomainRule(
        identity_pb2.CreateDomainRuleRequest(
            domain_id=domain.id, role="staff", scope_id=str(group)
        ),
        metadata=meta,
    )
    newcomer = await create_user(stub, tokens, account, email=f"new@{name}")
    outsider = await create_user(stub, tokens, account, email=f"x@other-{name}")
    before_sign_in = await resolve(stub, tokens, existing.id)
    await sign_in(stub, existing.email)
    after_sign_in = await resolve(stub, tokens, existing.id)
    grants = await stub.ListRoleGrants(
        identity_pb2.ListRoleGrantsRequest(user_id=newcomer.id), metadata=meta
    )

    assert (rule.scope_type, rule.scope_id, rule.role, rule.domain) == (
        "tenant_group",
        str(group),
        "staff",
        name,
    )
    newcomer_view = await resolve(stub, tokens, newcomer.id)
    assert set(newcomer_view.permissions) == PRESET_ROLES["staff"]
    assert list(newcomer_view.tenant_ids) == [str(tenant)]
    assert [(g.role, g.domain_rule_id) for g in grants.grants] == [("staff", rule.id)]
    assert not (await resolve(stub, tokens, outsider.id)).permissions
    assert not before_sign_in.permissions  # a rule applies at creation or sign-in
    assert set(after_sign_in.permissions) == PRESET_ROLES["staff"]


async def test_deleting_the_rule_or_the_domain_withdraws_what_it_granted(
    stub, tokens: ContextTokens, dns: FakeDns
) -> None:
    account = uuid.uuid4()
    name = business_domain()
    domain = await verified_domain(stub, tokens, dns, account, name)
    meta = metadata(tokens, account)
    staff_rule = await stub.CreateDomainRule(
        identity_pb2.CreateDomainRuleRequest(domain_id=domain.id, role="staff"), metadata=meta
    )
    await stub.CreateDomainRule(
        identity_pb2.CreateDomainRuleRequest(domain_id=domain.id, role="auditor"), metadata=meta
    )
    user = await create_user(stub, tokens, account, email=f"ann@{name}", role="customer")
    assert set((await resolve(stub, tokens, user.id)).permissions) == (
        PRESET_ROLES["staff"] | PRESET_ROLES["auditor"] | PRESET_ROLES["customer"]
    )

    await stub.DeleteDomainRule(
        identity_pb2.DeleteDomainRuleRequest(rule_id=staff_rule.id), metadata=meta
    )
    after_rule = await resolve(stub, tokens, user.id)
    await stub.DeleteDomain(identity_pb2.DeleteDomainRequest(domain_id=domain.id), metadata=meta)
    after_domain = await resolve(stub, tokens, user.id)
    rules = await stub.ListDomainRules(identity_pb2.ListDomainRulesRequest(), metadata=meta)

    assert set(after_rule.permissions) == PRESET_ROLES["auditor"] | PRESET_ROLES["customer"]
    assert set(after_domain.permissions) == PRESET_ROLES["customer"]  # the manual grant stays
    assert not rules.rules


async def test_an_email_change_withdraws_the_old_domains_grants(
    stub, tokens: ContextTokens, dns: FakeDns
) -> None:
    account = uuid.uuid4()
    name = business_domain()
    domain = await verified_domain(stub, tokens, dns, account, name)
    meta = metadata(tokens, account)
    await stub.CreateDomainRule(
        identity_pb2.CreateDomainRuleRequest(domain_id=domain.id, role="auditor"), metadata=meta
    )
    user = await create_user(stub, tokens, account, email=f"bob@{name}")
    assert (await resolve(stub, tokens, user.id)).permissions

    await stub.UpdateUser(
        identity_pb2.UpdateUserRequest(user_id=user.id, email=f"bob@elsewhere-{name}"),
        metadata=meta,
    )

    assert not (await resolve(stub, tokens, user.id)).permissions


async def test_rules_need_a_verified_domain_a_known_role_and_a_scope_in_the_account(
    stub, tokens: ContextTokens, dns: FakeDns
) -> None:
    account = uuid.uuid4()
    meta = metadata(tokens, account)
    pending = await stub.CreateDomain(
        identity_pb2.CreateDomainRequest(domain=business_domain()), metadata=meta
    )
    domain = await verified_domain(stub, tokens, dns, account, business_domain())

    async def rule(domain_id: str, role: str, scope_id: str = "") -> grpc.aio.AioRpcError:
        return await rpc_error(
            stub.CreateDomainRule(
                identity_pb2.CreateDomainRuleRequest(
                    domain_id=domain_id, role=role, scope_id=scope_id
                ),
                metadata=meta,
            )
        )

    unverified = await rule(pending.id, "staff")
    unknown_role = await rule(domain.id, "wizard")
    foreign_group = await rule(domain.id, "staff", str(uuid.uuid4()))
    other_account = await rpc_error(
        stub.CreateDomainRule(
            identity_pb2.CreateDomainRuleRequest(domain_id=domain.id, role="staff"),
            metadata=metadata(tokens, uuid.uuid4()),
        )
    )

    assert unverified.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert unknown_role.code() == foreign_group.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert other_account.code() == grpc.StatusCode.NOT_FOUND
