"""What a principal may do in one account: the gateway's question, answered from grants.

Account-wide grants apply to every tenant. A grant on a tenant group or a tenant applies to
the tenants it covers only: `tenant_permissions` says exactly what holds on each tenant, while
`permissions` is the union over all grants (what a caller not narrowed to one tenant is shown).
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.identity.domain.roles import GrantScope, ScopeType


@dataclass(frozen=True)
class GrantedPermissions:
    """One live grant as Resolve sees it: its role's permissions and where they apply."""

    permissions: frozenset[str]
    scope: GrantScope


@dataclass(frozen=True)
class Resolution:
    account_id: uuid.UUID | None
    member: bool
    permissions: frozenset[str] = frozenset()
    all_tenants: bool = False
    tenant_ids: frozenset[uuid.UUID] = frozenset()
    membership_count: int = 0
    authz_version: int = 0
    account_permissions: frozenset[str] = frozenset()
    tenant_permissions: Mapping[uuid.UUID, frozenset[str]] = field(default_factory=dict)
    principal_kind: str = "user"

    def allows(self, permission: str, tenant_id: uuid.UUID | None = None) -> bool:
        """Whether `permission` holds (on `tenant_id`, when given)."""
        if tenant_id is None:
            return permission in self.permissions
        if permission in self.tenant_permissions.get(tenant_id, frozenset()):
            return True
        return self.all_tenants and permission in self.account_permissions


def ambiguous(membership_count: int, *, principal_kind: str = "user") -> Resolution:
    """No account given and not exactly one to default to."""
    return Resolution(
        account_id=None,
        member=False,
        membership_count=membership_count,
        principal_kind=principal_kind,
    )


def scope_buckets(
    grants: Iterable[GrantedPermissions],
) -> dict[frozenset[str], tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]]:
    """Narrow grants by permission set: {permissions: (group ids, tenant ids)}.

    One tenant-scope expansion per distinct permission set is enough to know what holds where.
    """
    buckets: dict[frozenset[str], tuple[set[uuid.UUID], set[uuid.UUID]]] = {}
    for grant in grants:
        if grant.scope.type is ScopeType.ACCOUNT or not grant.permissions:
            continue
        assert grant.scope.id is not None
        groups, tenants = buckets.setdefault(grant.permissions, (set(), set()))
        (groups if grant.scope.type is ScopeType.TENANT_GROUP else tenants).add(grant.scope.id)
    return {perms: (frozenset(g), frozenset(t)) for perms, (g, t) in buckets.items()}


def resolution(
    *,
    account_id: uuid.UUID,
    member: bool,
    granted: Iterable[GrantedPermissions],
    expanded: Mapping[frozenset[str], frozenset[uuid.UUID]] | None = None,
    membership_count: int,
    authz_version: int = 0,
    principal_kind: str = "user",
) -> Resolution:
    """Permissions and visible tenants from the live grants; a non-member holds nothing.

    `expanded` maps each narrow permission set (see scope_buckets) to the tenants its groups
    and tenants cover.
    """
    if not member:
        return Resolution(
            account_id=account_id,
            member=False,
            membership_count=membership_count,
            authz_version=authz_version,
            principal_kind=principal_kind,
        )
    grants = list(granted)
    account_wide = frozenset(
        p for g in grants if g.scope.type is ScopeType.ACCOUNT for p in g.permissions
    )
    per_tenant: dict[uuid.UUID, set[str]] = {}
    for permissions, tenants in (expanded or {}).items():
        for tenant in tenants:
            per_tenant.setdefault(tenant, set()).update(permissions)
    all_tenants = bool(account_wide)
    tenant_permissions = {
        tenant: frozenset(perms | account_wide)
        for tenant, perms in per_tenant.items()
        if perms and not perms <= account_wide
    }
    union = account_wide.union(*tenant_permissions.values())
    return Resolution(
        account_id=account_id,
        member=True,
        permissions=union,
        all_tenants=all_tenants,
        tenant_ids=frozenset() if all_tenants else frozenset(tenant_permissions),
        membership_count=membership_count,
        authz_version=authz_version,
        account_permissions=account_wide,
        tenant_permissions=tenant_permissions,
        principal_kind=principal_kind,
    )
