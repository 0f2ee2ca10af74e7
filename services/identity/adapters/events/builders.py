"""Envelopes for the events identity publishes (canopy.identity.*)."""

import uuid
from collections.abc import Iterable

from canopy.common.v1 import events_pb2
from canopy.identity.v1 import identity_pb2
from services.identity.domain.roles import RoleGrant
from services.identity.domain.users import User
from services.runtime.context import CallContext
from services.runtime.events import new_event

USER_CREATED = "canopy.identity.user.created"
MEMBERSHIP_CREATED = "canopy.identity.membership.created"
ROLES_SEEDED = "canopy.identity.roles.seeded"
GRANT_CHANGED = "canopy.identity.grant.changed"
LOGIN_SUCCEEDED = "canopy.identity.login.succeeded"
LOGIN_FAILED = "canopy.identity.login.failed"


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
        user_id=str(grant.user_id),
        role=grant.role,
        scope=grant.scope,
        change=change,
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
