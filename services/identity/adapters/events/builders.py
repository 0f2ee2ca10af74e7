"""Envelopes for the events identity publishes (canopy.identity.*)."""

import uuid
from collections.abc import Iterable

from canopy.common.v1 import events_pb2
from canopy.identity.v1 import identity_pb2
from services.identity.domain.api_keys import ApiKey, ServiceAccount
from services.identity.domain.domains import Domain, DomainRule
from services.identity.domain.roles import Role, RoleGrant
from services.identity.domain.users import User
from services.runtime.context import CallContext
from services.runtime.events import new_event

USER_CREATED = "canopy.identity.user.created"
MEMBERSHIP_CREATED = "canopy.identity.membership.created"
ROLES_SEEDED = "canopy.identity.roles.seeded"
GRANT_CHANGED = "canopy.identity.grant.changed"
LOGIN_SUCCEEDED = "canopy.identity.login.succeeded"
LOGIN_FAILED = "canopy.identity.login.failed"
LOGIN_LOCKED = "canopy.identity.login.locked"
REFRESH_TOKEN_REUSED = "canopy.identity.refresh_token.reused"
SIGNING_KEY_ROTATED = "canopy.identity.signing_key.rotated"


def user_created(user: User, *, account_id: uuid.UUID, ctx: CallContext) -> events_pb2.Event:
    payload = identity_pb2.UserCreated(user_id=str(user.id), email=user.email)
    return new_event(USER_CREATED, payload, account_id=account_id, ctx=ctx)


def membership_created(
    user_id: uuid.UUID, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.MembershipCreated(user_id=str(user_id))
    return new_event(MEMBERSHIP_CREATED, payload, account_id=account_id, ctx=ctx)


def roles_seeded(
    names: Iterable[str], *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.PresetRolesSeeded(roles=sorted(names))
    return new_event(ROLES_SEEDED, payload, account_id=account_id, ctx=ctx)


def grant_changed(
    grant: RoleGrant, change: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.GrantChanged(
        grant_id=str(grant.id),
        user_id=str(grant.principal_id),
        role=grant.role,
        scope=grant.scope.type.value,
        change=change,
        scope_id=str(grant.scope.id) if grant.scope.id else "",
        principal_kind=grant.principal_kind.value,
        domain_rule_id=str(grant.domain_rule_id) if grant.domain_rule_id else "",
    )
    return new_event(GRANT_CHANGED, payload, account_id=account_id, ctx=ctx)


def login_succeeded(user_id: uuid.UUID, *, ctx: CallContext) -> events_pb2.Event:
    """A platform event: sign-in happens before any account is chosen."""
    payload = identity_pb2.LoginSucceeded(user_id=str(user_id))
    return new_event(LOGIN_SUCCEEDED, payload, account_id=None, ctx=ctx)


def login_failed(email: str, reason: str, *, ctx: CallContext) -> events_pb2.Event:
    """A platform event naming the email tried and why it failed (never the password)."""
    payload = identity_pb2.LoginFailed(email=email, reason=reason)
    return new_event(LOGIN_FAILED, payload, account_id=None, ctx=ctx)


def login_locked(
    email: str, failures: int, locked_seconds: int, *, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.LoginLocked(
        email=email, failures=failures, locked_seconds=locked_seconds
    )
    return new_event(LOGIN_LOCKED, payload, account_id=None, ctx=ctx)


def refresh_token_reused(
    user_id: uuid.UUID, family_id: uuid.UUID, *, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.RefreshTokenReused(user_id=str(user_id), family_id=str(family_id))
    return new_event(REFRESH_TOKEN_REUSED, payload, account_id=None, ctx=ctx)


def signing_key_rotated(kid: str, retired_kid: str, *, ctx: CallContext) -> events_pb2.Event:
    payload = identity_pb2.SigningKeyRotated(kid=kid, retired_kid=retired_kid)
    return new_event(SIGNING_KEY_ROTATED, payload, account_id=None, ctx=ctx)


def user_changed(
    user_id: uuid.UUID,
    verb: str,
    *,
    account_id: uuid.UUID,
    ctx: CallContext,
    fields: Iterable[str] = (),
    erased: bool = False,
) -> events_pb2.Event:
    """canopy.identity.user.<verb>: deactivated, restored, updated or deleted."""
    payload = identity_pb2.UserChanged(user_id=str(user_id), fields=sorted(fields), erased=erased)
    return new_event(f"canopy.identity.user.{verb}", payload, account_id=account_id, ctx=ctx)


def role_changed(
    role: Role, verb: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.RoleChanged(
        role_id=str(role.id), name=role.name, permissions=sorted(role.permissions)
    )
    return new_event(f"canopy.identity.role.{verb}", payload, account_id=account_id, ctx=ctx)


def service_account_changed(
    service_account: ServiceAccount, verb: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.ServiceAccountChanged(
        service_account_id=str(service_account.id), name=service_account.name
    )
    return new_event(
        f"canopy.identity.service_account.{verb}", payload, account_id=account_id, ctx=ctx
    )


def api_key_changed(
    key: ApiKey, verb: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.ApiKeyChanged(
        api_key_id=str(key.id),
        prefix=key.prefix,
        owner_id=str(key.owner_id),
        owner_kind=key.owner_kind.value,
    )
    return new_event(f"canopy.identity.api_key.{verb}", payload, account_id=account_id, ctx=ctx)


def domain_changed(
    domain: Domain, verb: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.DomainChanged(domain_id=str(domain.id), domain=domain.domain)
    return new_event(f"canopy.identity.domain.{verb}", payload, account_id=account_id, ctx=ctx)


def domain_rule_changed(
    rule: DomainRule, verb: str, *, account_id: uuid.UUID, ctx: CallContext
) -> events_pb2.Event:
    payload = identity_pb2.DomainRuleChanged(
        rule_id=str(rule.id),
        domain=rule.domain,
        role=rule.role,
        scope_type=rule.scope.type.value,
        scope_id=str(rule.scope.id) if rule.scope.id else "",
    )
    return new_event(f"canopy.identity.domain_rule.{verb}", payload, account_id=account_id, ctx=ctx)
