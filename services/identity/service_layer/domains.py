"""Verified email domains and domain rules: members of a domain get a role on a scope."""

import secrets
import uuid

from services.identity.adapters.events import builders
from services.identity.domain import domains as rules
from services.identity.domain.domains import Domain, DomainRule
from services.identity.domain.errors import DomainNotFound, DomainRuleNotFound, UnknownRole
from services.identity.domain.roles import GrantScope, PermissionCatalogue, role_name
from services.identity.domain.users import User
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.roles import check_scope, grant_in, seed_presets
from services.identity.service_layer.unit_of_work import UnitOfWork
from services.runtime.context import CallContext
from services.runtime.db import Scope
from services.runtime.errors import AlreadyExists, Forbidden, InvalidInput, PreconditionFailed
from services.runtime.ids import parse_id

# Who may confirm a domain without the TXT record being checked here.
OPERATOR_KINDS = frozenset({"operator", "service"})


async def apply_domain_rules(
    uow: UnitOfWork,
    *,
    account_id: uuid.UUID,
    user: User,
    catalogue: PermissionCatalogue,
    ctx: CallContext,
) -> int:
    """Grant what the account's rules for the user's email domain give (idempotent)."""
    matching = await uow.repos.domains.rules_for_email_domain(account_id, user.email_domain)
    if not matching or not await uow.repos.memberships.is_member(account_id, user.id):
        return 0
    for rule in matching:
        await grant_in(
            uow,
            account_id=account_id,
            principal_id=user.id,
            role=rule.role,
            catalogue=catalogue,
            ctx=ctx,
            scope=rule.scope,
            domain_rule_id=rule.id,
        )
    return len(matching)


async def withdraw_rule_grants(
    uow: UnitOfWork,
    *,
    account_id: uuid.UUID,
    ctx: CallContext,
    rule_ids: list[uuid.UUID] | None = None,
    principal_id: uuid.UUID | None = None,
) -> int:
    """Revoke the grants the rules made (of one principal, when given); how many."""
    revoked = await uow.repos.grants.revoke_where(
        account_id, principal_id=principal_id, domain_rule_ids=rule_ids, from_rules_only=True
    )
    if revoked:
        await uow.changed_authorization(account_id)
        await uow.publish(
            *(builders.grant_changed(g, "revoked", account_id=account_id, ctx=ctx) for g in revoked)
        )
    return len(revoked)


async def create_domain(deps: Deps, *, ctx: CallContext, domain: str) -> Domain:
    account_id = ctx.require_account()
    name = rules.normalize_domain(domain)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        created = await uow.repos.domains.add(account_id, name, secrets.token_urlsafe(24))
        if created is None:
            raise AlreadyExists(f"{name} is already claimed by this account")
        await uow.publish(
            builders.domain_changed(created, "created", account_id=account_id, ctx=ctx)
        )
        return created


async def list_domains(deps: Deps, *, ctx: CallContext) -> list[Domain]:
    account_id = ctx.require_account()
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        return await uow.repos.domains.listed(account_id)


async def verify_domain(
    deps: Deps, *, ctx: CallContext, domain_id: str, operator_confirmed: bool
) -> Domain:
    """Verified when the TXT record holds the token, or when an operator confirms it."""
    account_id = ctx.require_account()
    wanted = parse_id(domain_id, field="domain_id")
    if operator_confirmed and ctx.principal_kind not in OPERATOR_KINDS:
        raise Forbidden("only operators can confirm a domain without its TXT record")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        domain = await uow.repos.domains.by_id(account_id, wanted)
    if domain is None:
        raise DomainNotFound()
    if domain.verified:
        return domain
    if not operator_confirmed:
        records = await deps.verifier.txt_records(rules.txt_record_name(domain.domain))
        if not domain.proven_by(records):
            raise PreconditionFailed(
                f"no TXT record {rules.txt_record_value(domain.verification_token)!r} found at"
                f" {rules.txt_record_name(domain.domain)}; publish it and try again"
            )
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        verified = await uow.repos.domains.mark_verified(account_id, wanted)
        if verified is None:
            raise AlreadyExists(f"{domain.domain} is verified by another account")
        await uow.publish(
            builders.domain_changed(verified, "verified", account_id=account_id, ctx=ctx)
        )
        return verified


async def delete_domain(deps: Deps, *, ctx: CallContext, domain_id: str) -> Domain:
    """Remove the domain and its rules, and withdraw the grants they made."""
    account_id = ctx.require_account()
    wanted = parse_id(domain_id, field="domain_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        domain = await uow.repos.domains.by_id(account_id, wanted)
        if domain is None:
            raise DomainNotFound()
        domain_rules = await uow.repos.domains.rules_of(account_id, domain_id=wanted)
        rule_ids = [r.id for r in domain_rules]
        if rule_ids:
            await withdraw_rule_grants(uow, account_id=account_id, ctx=ctx, rule_ids=rule_ids)
            await uow.repos.domains.remove_rules(account_id, rule_ids)
        await uow.repos.domains.remove(account_id, wanted)
        await uow.publish(
            *(
                builders.domain_rule_changed(r, "deleted", account_id=account_id, ctx=ctx)
                for r in domain_rules
            ),
            builders.domain_changed(domain, "deleted", account_id=account_id, ctx=ctx),
        )
        return domain


async def create_rule(
    deps: Deps, *, ctx: CallContext, domain_id: str, role: str, scope_type: str, scope_id: str
) -> DomainRule:
    account_id = ctx.require_account()
    wanted = parse_id(domain_id, field="domain_id")
    name = role_name(role)
    if not name:
        raise InvalidInput("role is required")
    if not scope_type.strip() and scope_id.strip():
        scope_type = "tenant_group"
    scope = GrantScope.parse(scope_type, scope_id)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        domain = await uow.repos.domains.by_id(account_id, wanted)
    if domain is None:
        raise DomainNotFound()
    if not domain.verified:
        raise PreconditionFailed("verify the domain before adding rules to it")
    await check_scope(deps.tenants, account_id, scope, ctx)
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        await seed_presets(uow, account_id=account_id, catalogue=deps.catalogue, ctx=ctx)
        found = await uow.repos.roles.by_name(account_id, name)
        if found is None:
            raise UnknownRole(name)
        rule_id = await uow.repos.domains.add_rule(
            account_id, domain_id=wanted, role_id=found.id, scope=scope
        )
        if rule_id is None:
            raise AlreadyExists("this domain already has the same rule")
        rule = await uow.repos.domains.rule(account_id, rule_id)
        assert rule is not None
        await uow.publish(
            builders.domain_rule_changed(rule, "created", account_id=account_id, ctx=ctx)
        )
        return rule


async def list_rules(deps: Deps, *, ctx: CallContext) -> list[DomainRule]:
    account_id = ctx.require_account()
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        return await uow.repos.domains.rules_of(account_id)


async def delete_rule(deps: Deps, *, ctx: CallContext, rule_id: str) -> DomainRule:
    """Remove the rule and withdraw every grant it made, in one transaction."""
    account_id = ctx.require_account()
    wanted = parse_id(rule_id, field="rule_id")
    async with deps.store.transaction(Scope.of(ctx)) as uow:
        rule = await uow.repos.domains.rule(account_id, wanted)
        if rule is None:
            raise DomainRuleNotFound()
        await withdraw_rule_grants(uow, account_id=account_id, ctx=ctx, rule_ids=[wanted])
        await uow.repos.domains.remove_rules(account_id, [wanted])
        await uow.publish(
            builders.domain_rule_changed(rule, "deleted", account_id=account_id, ctx=ctx)
        )
        return rule
