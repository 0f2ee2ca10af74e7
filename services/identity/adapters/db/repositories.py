"""Repositories over one AsyncSession: the only place identity's SQL lives."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Executable, Row, and_, delete, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.adapters.db.tables import IdentityTables
from services.identity.domain.api_keys import ApiKey, ServiceAccount
from services.identity.domain.domains import Domain, DomainRule
from services.identity.domain.leases import Lease
from services.identity.domain.resolution import GrantedPermissions
from services.identity.domain.roles import (
    ADMIN,
    GrantScope,
    PrincipalKind,
    Role,
    RoleGrant,
    ScopeType,
)
from services.identity.domain.throttle import Throttle
from services.identity.domain.tokens import PublicKey, StoredRefreshToken
from services.identity.domain.users import Membership, MembershipStatus, User, UserStatus
from services.runtime.ids import new_id

# Serializes signing-key creation across replicas (pg_advisory_xact_lock key).
SIGNING_KEY_LOCK = 0x1D3_5161
# Taking an authz lease waits for every fencing transaction in flight (see AuthzLeases).
AUTHZ_LEASES_LOCK = 0x1D3_1EA5


def _user(row: Row) -> User:  # type: ignore[type-arg]
    membership = getattr(row, "deactivated_at", "absent")
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        status=UserStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        membership=None
        if membership == "absent"
        else MembershipStatus.ACTIVE
        if membership is None
        else MembershipStatus.DEACTIVATED,
    )


async def _savepoint_insert(session: AsyncSession, statement) -> Row | None:  # type: ignore[no-untyped-def,type-arg]
    """Run an INSERT ... RETURNING in a savepoint; None when a unique index refused it."""
    try:
        async with session.begin_nested():
            return (await session.execute(statement)).first()
    except IntegrityError:
        return None


class Users:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.users
        self.memberships = tables.memberships

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (t.c.id, t.c.email, t.c.display_name, t.c.status, t.c.created_at, t.c.updated_at)

    async def by_email(self, email: str) -> User | None:
        query = select(*self._columns()).where(func.lower(self.t.c.email) == func.lower(email))
        row = (await self.session.execute(query)).first()
        return _user(row) if row else None

    async def credentials(self, email: str) -> tuple[User, str] | None:
        """The user with `email` and its password hash (for sign-in only)."""
        query = select(*self._columns(), self.t.c.password_hash).where(
            func.lower(self.t.c.email) == func.lower(email)
        )
        row = (await self.session.execute(query)).first()
        return (_user(row), row.password_hash) if row else None

    async def by_id(self, user_id: uuid.UUID) -> User | None:
        row = (
            await self.session.execute(select(*self._columns()).where(self.t.c.id == user_id))
        ).first()
        return _user(row) if row else None

    async def member(self, account_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
        """The user with its membership status in the account; None if not a member."""
        m = self.memberships
        query = (
            select(*self._columns(), m.c.deactivated_at)
            .join(m, m.c.user_id == self.t.c.id)
            .where(m.c.account_id == account_id, m.c.user_id == user_id, m.c.deleted_at.is_(None))
        )
        row = (await self.session.execute(query)).first()
        return _user(row) if row else None

    async def add(self, *, email: str, display_name: str, password_hash: str) -> User | None:
        """Insert a user; None when the email is already taken (case-insensitively)."""
        query = (
            insert(self.t)
            .values(
                id=new_id(), email=email, display_name=display_name, password_hash=password_hash
            )
            .on_conflict_do_nothing(index_elements=[func.lower(self.t.c.email)])
            .returning(*self._columns())
        )
        row = (await self.session.execute(query)).first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            update(self.t)
            .where(self.t.c.id == user_id)
            .values(password_hash=password_hash, updated_at=func.now())
        )

    async def update_profile(
        self, user_id: uuid.UUID, *, email: str | None, display_name: str | None
    ) -> User | None:
        """Change the email and/or name; None when the email belongs to someone else."""
        values: dict[str, object] = {"updated_at": func.now()}
        if email is not None:
            values["email"] = email
        if display_name is not None:
            values["display_name"] = display_name
        statement = (
            update(self.t)
            .where(self.t.c.id == user_id)
            .values(**values)
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _user(row) if row else None

    async def erase(self, user_id: uuid.UUID, *, email: str) -> None:
        """Scrub the personal data; the row (and id) stays for the audit trail's references."""
        await self.session.execute(
            update(self.t)
            .where(self.t.c.id == user_id)
            .values(
                email=email,
                display_name="",
                password_hash="!",
                status=UserStatus.ERASED.value,
                deactivated_at=func.now(),
                updated_at=func.now(),
            )
        )

    async def members(
        self, account_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[User]:
        """Users with a live membership in the account, by id."""
        m = self.memberships
        query = (
            select(*self._columns(), m.c.deactivated_at)
            .join(m, m.c.user_id == self.t.c.id)
            .where(m.c.account_id == account_id, m.c.deleted_at.is_(None))
            .order_by(self.t.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(self.t.c.id > after)
        return [_user(row) for row in (await self.session.execute(query)).all()]


class Memberships:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.memberships

    async def add(self, account_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Make the user a member; False when it already was."""
        query = (
            insert(self.t)
            .values(id=new_id(), account_id=account_id, user_id=user_id)
            .on_conflict_do_nothing(
                index_elements=["account_id", "user_id"], index_where=text("deleted_at IS NULL")
            )
            .returning(self.t.c.id)
        )
        return (await self.session.execute(query)).first() is not None

    def _live(self, account_id: uuid.UUID, user_id: uuid.UUID):  # type: ignore[no-untyped-def]
        return and_(
            self.t.c.account_id == account_id,
            self.t.c.user_id == user_id,
            self.t.c.deleted_at.is_(None),
        )

    async def is_member(self, account_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """An active (not deactivated) member."""
        live = exists().where(self._live(account_id, user_id), self.t.c.deactivated_at.is_(None))
        return bool((await self.session.execute(select(live))).scalar())

    async def set_deactivated(
        self, account_id: uuid.UUID, user_id: uuid.UUID, *, deactivated: bool
    ) -> bool:
        """Deactivate or restore; False when it already was so."""
        t = self.t
        condition = t.c.deactivated_at.is_(None) if deactivated else t.c.deactivated_at.isnot(None)
        result = await self.session.execute(
            update(t)
            .where(self._live(account_id, user_id), condition)
            .values(deactivated_at=func.now() if deactivated else None, updated_at=func.now())
            .returning(t.c.id)
        )
        return result.first() is not None

    async def remove(self, account_id: uuid.UUID, user_id: uuid.UUID) -> None:
        t = self.t
        await self.session.execute(
            delete(t).where(t.c.account_id == account_id, t.c.user_id == user_id)
        )

    async def accounts_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The accounts where the user is an active member (a SECURITY DEFINER lookup)."""
        function = f"{self.t.schema}.accounts_of_user"
        rows = await self.session.execute(
            text(f"SELECT account_id FROM {function}(:user_id) AS account_id"),
            {"user_id": user_id},
        )
        return [row.account_id for row in rows]

    async def all_of(self, user_id: uuid.UUID) -> list[Membership]:
        """Every membership of the user, deactivated ones too (a SECURITY DEFINER lookup)."""
        function = f"{self.t.schema}.memberships_of_user"
        rows = await self.session.execute(
            text(f"SELECT account_id, deactivated_at, created_at FROM {function}(:user_id)"),
            {"user_id": user_id},
        )
        return [
            Membership(
                account_id=row.account_id,
                status=MembershipStatus.ACTIVE
                if row.deactivated_at is None
                else MembershipStatus.DEACTIVATED,
                created_at=row.created_at,
            )
            for row in rows
        ]


class AuthzVersions:
    """The per-account counter that every authorization change bumps in its transaction."""

    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.account_authz

    async def bump(self, account_id: uuid.UUID) -> int:
        t = self.t
        statement = insert(t).values(account_id=account_id, version=1)
        statement = statement.on_conflict_do_update(
            index_elements=[t.c.account_id],
            set_={"version": t.c.version + 1, "updated_at": func.now()},
        ).returning(t.c.version)
        return int((await self.session.execute(statement)).scalar_one())

    async def current(self, account_id: uuid.UUID) -> int:
        t = self.t
        found = await self.session.execute(select(t.c.version).where(t.c.account_id == account_id))
        return int(found.scalar() or 0)

    @staticmethod
    def current_alone(account_id: uuid.UUID) -> Executable:
        """The version as one statement needing no transaction or scope (see migration 0003)."""
        return select(func.identity.authz_version_of(account_id))


class AuthzLeases:
    """Who holds a lease on caching authz versions, until when (the database's clock decides).

    Fencing transactions hold a shared advisory lock until they commit and taking a lease waits
    for the exclusive one, so a new holder's first reads see every change that was fenced
    without it.
    """

    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.authz_leases

    async def take(self, lease: Lease, seconds: float) -> None:
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUTHZ_LEASES_LOCK}
        )
        t = self.t
        await self.session.execute(delete(t).where(t.c.expires_at < func.clock_timestamp()))
        await self.session.execute(
            insert(t).values(
                lease_id=lease.lease_id,
                fence_subject=lease.fence_subject,
                expires_at=_after(seconds),
            )
        )

    async def extend(self, lease_id: uuid.UUID, seconds: float) -> bool:
        """False when the lease ran out or was broken: fences may have passed its holder by."""
        t = self.t
        extended = await self.session.execute(
            update(t)
            .where(t.c.lease_id == lease_id, t.c.expires_at > func.clock_timestamp())
            .values(expires_at=_after(seconds))
            .returning(t.c.lease_id)
        )
        return extended.first() is not None

    async def release(self, lease_id: uuid.UUID) -> None:
        await self.session.execute(delete(self.t).where(self.t.c.lease_id == lease_id))

    async def hold_for_fencing(self) -> None:
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": AUTHZ_LEASES_LOCK}
        )

    async def live(self) -> list[Lease]:
        t = self.t
        rows = await self.session.execute(
            select(t.c.lease_id, t.c.fence_subject).where(t.c.expires_at > func.clock_timestamp())
        )
        return [Lease(row.lease_id, row.fence_subject) for row in rows]

    async def break_leases(self, lease_ids: Sequence[uuid.UUID]) -> float:
        """End these leases now; the seconds until the last of them would have run out (their
        holders keep using their caches until then, so a fence must wait that long)."""
        t = self.t
        left = func.greatest(func.extract("epoch", t.c.expires_at - func.clock_timestamp()), 0)
        rows = await self.session.execute(
            delete(t).where(t.c.lease_id.in_(lease_ids)).returning(left)
        )
        return max((float(value) for value in rows.scalars()), default=0.0)


def _after(seconds: float):  # type: ignore[no-untyped-def]
    return func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _role(row: Row) -> Role:  # type: ignore[type-arg]
    return Role(
        id=row.id,
        name=row.name,
        permissions=tuple(row.permissions),
        preset=row.preset,
        based_on=row.based_on or "",
        description=row.description,
    )


class Roles:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.roles
        self.grants = tables.role_grants
        self.rules = tables.domain_rules

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (t.c.id, t.c.name, t.c.permissions, t.c.preset, t.c.based_on, t.c.description)

    async def seed_presets(
        self, account_id: uuid.UUID, presets: Sequence[tuple[str, tuple[str, ...]]]
    ) -> tuple[list[str], list[str]]:
        """Create the missing presets and bring changed ones up to date, in one statement.

        The names created and the names updated.
        """
        t = self.t
        statement = insert(t).values(
            [
                {
                    "id": new_id(),
                    "account_id": account_id,
                    "name": name,
                    "permissions": list(permissions),
                    "preset": True,
                }
                for name, permissions in presets
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["account_id", "name"],
            index_where=text("deleted_at IS NULL"),
            set_={"permissions": statement.excluded.permissions, "updated_at": func.now()},
            where=and_(t.c.preset.is_(True), t.c.permissions != statement.excluded.permissions),
        ).returning(t.c.name, t.c.created_at == t.c.updated_at)
        rows = (await self.session.execute(statement)).all()
        created = [row[0] for row in rows if row[1]]
        updated = [row[0] for row in rows if not row[1]]
        return created, updated

    async def by_name(self, account_id: uuid.UUID, name: str) -> Role | None:
        t = self.t
        query = select(*self._columns()).where(
            t.c.account_id == account_id, t.c.name == name, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _role(row) if row else None

    async def by_id(self, account_id: uuid.UUID, role_id: uuid.UUID) -> Role | None:
        t = self.t
        query = select(*self._columns()).where(
            t.c.account_id == account_id, t.c.id == role_id, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _role(row) if row else None

    async def all(self, account_id: uuid.UUID) -> list[Role]:
        t = self.t
        query = (
            select(*self._columns())
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.preset.desc(), t.c.name)
        )
        return [_role(row) for row in (await self.session.execute(query)).all()]

    async def add(
        self,
        account_id: uuid.UUID,
        *,
        name: str,
        permissions: Iterable[str],
        based_on: str,
        description: str,
    ) -> Role | None:
        """A new custom role; None when the name is taken."""
        t = self.t
        statement = (
            insert(t)
            .values(
                id=new_id(),
                account_id=account_id,
                name=name,
                permissions=sorted(permissions),
                preset=False,
                based_on=based_on or None,
                description=description,
            )
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _role(row) if row else None

    async def change(
        self,
        account_id: uuid.UUID,
        role_id: uuid.UUID,
        *,
        name: str | None,
        permissions: Iterable[str] | None,
        description: str | None,
    ) -> Role | None:
        """Update a custom role; None when the new name is taken."""
        t = self.t
        values: dict[str, object] = {"updated_at": func.now()}
        if name is not None:
            values["name"] = name
        if permissions is not None:
            values["permissions"] = sorted(permissions)
        if description is not None:
            values["description"] = description
        statement = (
            update(t)
            .where(t.c.account_id == account_id, t.c.id == role_id, t.c.deleted_at.is_(None))
            .values(**values)
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _role(row) if row else None

    async def uses(self, account_id: uuid.UUID, role_id: uuid.UUID) -> tuple[int, int]:
        """How many live grants and domain rules name the role."""
        g, r = self.grants, self.rules
        grants = select(func.count()).where(
            g.c.account_id == account_id, g.c.role_id == role_id, g.c.deleted_at.is_(None)
        )
        rules = select(func.count()).where(
            r.c.account_id == account_id, r.c.role_id == role_id, r.c.deleted_at.is_(None)
        )
        row = (
            await self.session.execute(select(grants.scalar_subquery(), rules.scalar_subquery()))
        ).one()
        return int(row[0]), int(row[1])

    async def remove(self, account_id: uuid.UUID, role_id: uuid.UUID) -> None:
        t = self.t
        await self.session.execute(
            update(t)
            .where(t.c.account_id == account_id, t.c.id == role_id)
            .values(deleted_at=func.now(), updated_at=func.now())
        )


def _grant(row: Row) -> RoleGrant:  # type: ignore[type-arg]
    return RoleGrant(
        id=row.id,
        principal_id=row.principal_id,
        role=row.role,
        scope=GrantScope(ScopeType(row.scope), row.scope_id),
        created_at=row.created_at,
        principal_kind=PrincipalKind(row.principal_kind),
        domain_rule_id=row.domain_rule_id,
    )


class Grants:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.role_grants
        self.roles = tables.roles
        self.memberships = tables.memberships
        self.users = tables.users

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (
            t.c.id,
            t.c.principal_id,
            t.c.principal_kind,
            self.roles.c.name.label("role"),
            t.c.scope,
            t.c.scope_id,
            t.c.domain_rule_id,
            t.c.created_at,
        )

    def _joined(self):  # type: ignore[no-untyped-def]
        return select(*self._columns()).join(
            self.roles,
            and_(
                self.roles.c.id == self.t.c.role_id, self.roles.c.account_id == self.t.c.account_id
            ),
        )

    async def grant(
        self,
        *,
        account_id: uuid.UUID,
        principal_id: uuid.UUID,
        principal_kind: PrincipalKind,
        role: Role,
        scope: GrantScope,
        domain_rule_id: uuid.UUID | None = None,
    ) -> tuple[RoleGrant, bool]:
        """Grant `role` on `scope` (idempotent); the grant and whether it is new."""
        t = self.t
        inserted = (
            await self.session.execute(
                insert(t)
                .values(
                    id=new_id(),
                    account_id=account_id,
                    principal_id=principal_id,
                    principal_kind=principal_kind.value,
                    role_id=role.id,
                    scope=scope.type.value,
                    scope_id=scope.id,
                    domain_rule_id=domain_rule_id,
                )
                .on_conflict_do_nothing(
                    index_elements=[
                        "account_id",
                        "principal_id",
                        "role_id",
                        "scope",
                        "scope_id",
                        "domain_rule_id",
                    ],
                    index_where=text("deleted_at IS NULL"),
                )
                .returning(t.c.id, t.c.created_at)
            )
        ).first()
        created = inserted is not None
        if inserted is None:
            inserted = (
                await self.session.execute(
                    select(t.c.id, t.c.created_at).where(
                        t.c.account_id == account_id,
                        t.c.principal_id == principal_id,
                        t.c.role_id == role.id,
                        t.c.scope == scope.type.value,
                        t.c.scope_id.is_not_distinct_from(scope.id),
                        t.c.domain_rule_id.is_not_distinct_from(domain_rule_id),
                        t.c.deleted_at.is_(None),
                    )
                )
            ).one()
        grant = RoleGrant(
            id=inserted.id,
            principal_id=principal_id,
            role=role.name,
            scope=scope,
            created_at=inserted.created_at,
            principal_kind=principal_kind,
            domain_rule_id=domain_rule_id,
        )
        return grant, created

    async def by_id(self, account_id: uuid.UUID, grant_id: uuid.UUID) -> RoleGrant | None:
        t = self.t
        query = self._joined().where(
            t.c.account_id == account_id, t.c.id == grant_id, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _grant(row) if row else None

    async def revoke(self, account_id: uuid.UUID, grant_id: uuid.UUID) -> bool:
        t = self.t
        result = await self.session.execute(
            update(t)
            .where(t.c.account_id == account_id, t.c.id == grant_id, t.c.deleted_at.is_(None))
            .values(deleted_at=func.now(), updated_at=func.now())
            .returning(t.c.id)
        )
        return result.first() is not None

    async def revoke_where(
        self,
        account_id: uuid.UUID,
        *,
        principal_id: uuid.UUID | None = None,
        domain_rule_ids: Sequence[uuid.UUID] | None = None,
        from_rules_only: bool = False,
    ) -> list[RoleGrant]:
        """Revoke every live grant matching; the grants revoked (one statement)."""
        t = self.t
        conditions = [t.c.account_id == account_id, t.c.deleted_at.is_(None)]
        if principal_id is not None:
            conditions.append(t.c.principal_id == principal_id)
        if domain_rule_ids is not None:
            conditions.append(t.c.domain_rule_id.in_(list(domain_rule_ids)))
        if from_rules_only:
            conditions.append(t.c.domain_rule_id.isnot(None))
        revoked = (
            update(t)
            .where(*conditions)
            .values(deleted_at=func.now(), updated_at=func.now())
            .returning(
                t.c.id,
                t.c.principal_id,
                t.c.principal_kind,
                t.c.role_id,
                t.c.scope,
                t.c.scope_id,
                t.c.domain_rule_id,
                t.c.created_at,
            )
            .cte("revoked")
        )
        r = self.roles
        query = select(
            revoked.c.id,
            revoked.c.principal_id,
            revoked.c.principal_kind,
            r.c.name.label("role"),
            revoked.c.scope,
            revoked.c.scope_id,
            revoked.c.domain_rule_id,
            revoked.c.created_at,
        ).join(r, r.c.id == revoked.c.role_id)
        return [_grant(row) for row in (await self.session.execute(query)).all()]

    async def remove_all(self, account_id: uuid.UUID, principal_id: uuid.UUID) -> None:
        """Delete every grant row of the principal in the account (erasure)."""
        t = self.t
        await self.session.execute(
            delete(t).where(t.c.account_id == account_id, t.c.principal_id == principal_id)
        )

    async def listed(
        self,
        account_id: uuid.UUID,
        *,
        principal_id: uuid.UUID | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[RoleGrant]:
        t = self.t
        query = (
            self._joined()
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if principal_id is not None:
            query = query.where(t.c.principal_id == principal_id)
        if after is not None:
            query = query.where(t.c.id > after)
        return [_grant(row) for row in (await self.session.execute(query)).all()]

    async def effective(
        self, account_id: uuid.UUID, principal_id: uuid.UUID
    ) -> list[GrantedPermissions]:
        """The permissions and scope of each live grant of the principal (one query)."""
        t, r = self.t, self.roles
        query = (
            select(r.c.permissions, t.c.scope, t.c.scope_id)
            .join(r, and_(r.c.id == t.c.role_id, r.c.account_id == t.c.account_id))
            .where(
                t.c.account_id == account_id,
                t.c.principal_id == principal_id,
                t.c.deleted_at.is_(None),
                r.c.deleted_at.is_(None),
            )
        )
        return [
            GrantedPermissions(
                permissions=frozenset(row.permissions),
                scope=GrantScope(ScopeType(row.scope), row.scope_id),
            )
            for row in (await self.session.execute(query)).all()
        ]

    async def other_admins(self, account_id: uuid.UUID, *, besides: uuid.UUID) -> int:
        """Active members other than `besides` holding the admin preset on the whole account."""
        t, r, m, u = self.t, self.roles, self.memberships, self.users
        query = (
            select(func.count(func.distinct(t.c.principal_id)))
            .select_from(t)
            .join(r, and_(r.c.id == t.c.role_id, r.c.account_id == t.c.account_id))
            .join(
                m,
                and_(
                    m.c.account_id == t.c.account_id,
                    m.c.user_id == t.c.principal_id,
                    m.c.deleted_at.is_(None),
                    m.c.deactivated_at.is_(None),
                ),
            )
            .join(u, and_(u.c.id == m.c.user_id, u.c.status == UserStatus.ACTIVE.value))
            .where(
                t.c.account_id == account_id,
                t.c.deleted_at.is_(None),
                t.c.scope == ScopeType.ACCOUNT.value,
                t.c.principal_kind == PrincipalKind.USER.value,
                t.c.principal_id != besides,
                r.c.name == ADMIN,
                r.c.preset.is_(True),
            )
        )
        return int((await self.session.execute(query)).scalar_one())

    async def is_admin(self, account_id: uuid.UUID, principal_id: uuid.UUID) -> bool:
        t, r = self.t, self.roles
        query = select(
            exists().where(
                r.c.id == t.c.role_id,
                t.c.account_id == account_id,
                t.c.principal_id == principal_id,
                t.c.deleted_at.is_(None),
                t.c.scope == ScopeType.ACCOUNT.value,
                r.c.name == ADMIN,
                r.c.preset.is_(True),
            )
        )
        return bool((await self.session.execute(query)).scalar())


def _service_account(row: Row) -> ServiceAccount:  # type: ignore[type-arg]
    return ServiceAccount(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


class ServiceAccounts:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.service_accounts

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (t.c.id, t.c.name, t.c.description, t.c.created_at, t.c.updated_at, t.c.deleted_at)

    async def add(
        self, account_id: uuid.UUID, *, name: str, description: str, created_by: str
    ) -> ServiceAccount | None:
        """None when the name is taken in the account."""
        statement = (
            insert(self.t)
            .values(
                id=new_id(),
                account_id=account_id,
                name=name,
                description=description,
                created_by=created_by,
            )
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _service_account(row) if row else None

    async def by_id(self, account_id: uuid.UUID, sa_id: uuid.UUID) -> ServiceAccount | None:
        t = self.t
        query = select(*self._columns()).where(
            t.c.account_id == account_id, t.c.id == sa_id, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _service_account(row) if row else None

    async def listed(
        self, account_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
    ) -> list[ServiceAccount]:
        t = self.t
        query = (
            select(*self._columns())
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(t.c.id > after)
        return [_service_account(row) for row in (await self.session.execute(query)).all()]

    async def remove(self, account_id: uuid.UUID, sa_id: uuid.UUID) -> ServiceAccount | None:
        t = self.t
        row = (
            await self.session.execute(
                update(t)
                .where(t.c.account_id == account_id, t.c.id == sa_id, t.c.deleted_at.is_(None))
                .values(deleted_at=func.now(), updated_at=func.now())
                .returning(*self._columns())
            )
        ).first()
        return _service_account(row) if row else None

    async def account_of(self, sa_id: uuid.UUID) -> uuid.UUID | None:
        """The account of a live service account, across accounts (SECURITY DEFINER)."""
        function = f"{self.t.schema}.account_of_service_account"
        found = await self.session.execute(
            text(f"SELECT {function}(:id) AS account_id"), {"id": sa_id}
        )
        return found.scalar()


def _api_key(row: Row) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        owner_id=row.owner_id,
        owner_kind=PrincipalKind(row.owner_kind),
        name=row.name,
        prefix=row.prefix,
        permissions=tuple(row.permissions),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        created_at=row.created_at,
    )


class ApiKeys:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.api_keys

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (
            t.c.id,
            t.c.account_id,
            t.c.owner_id,
            t.c.owner_kind,
            t.c.name,
            t.c.prefix,
            t.c.permissions,
            t.c.expires_at,
            t.c.last_used_at,
            t.c.revoked_at,
            t.c.created_at,
        )

    async def add(
        self,
        account_id: uuid.UUID,
        *,
        owner_id: uuid.UUID,
        owner_kind: PrincipalKind,
        name: str,
        prefix: str,
        secret_hash: bytes,
        permissions: Iterable[str],
        expires_at: datetime,
        created_by: str,
    ) -> ApiKey:
        statement = (
            insert(self.t)
            .values(
                id=new_id(),
                account_id=account_id,
                owner_id=owner_id,
                owner_kind=owner_kind.value,
                name=name,
                prefix=prefix,
                secret_hash=secret_hash,
                permissions=sorted(permissions),
                expires_at=expires_at,
                created_by=created_by,
            )
            .returning(*self._columns())
        )
        return _api_key((await self.session.execute(statement)).one())

    async def by_prefix(self, prefix: str) -> tuple[uuid.UUID, uuid.UUID, bytes] | None:
        """(id, account id, secret hash) across accounts (SECURITY DEFINER), before any scope."""
        function = f"{self.t.schema}.api_key_by_prefix"
        row = (
            await self.session.execute(
                text(f"SELECT id, account_id, secret_hash FROM {function}(:prefix)"),
                {"prefix": prefix},
            )
        ).first()
        return (row.id, row.account_id, bytes(row.secret_hash)) if row else None

    async def by_id(self, account_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        t = self.t
        query = select(*self._columns()).where(t.c.account_id == account_id, t.c.id == key_id)
        row = (await self.session.execute(query)).first()
        return _api_key(row) if row else None

    async def of_owner(self, account_id: uuid.UUID, owner_id: uuid.UUID) -> list[ApiKey]:
        t = self.t
        query = (
            select(*self._columns())
            .where(t.c.account_id == account_id, t.c.owner_id == owner_id)
            .order_by(t.c.id)
        )
        return [_api_key(row) for row in (await self.session.execute(query)).all()]

    async def revoke(self, account_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        """Revoke a live key; None when there is no such live key."""
        t = self.t
        row = (
            await self.session.execute(
                update(t)
                .where(t.c.account_id == account_id, t.c.id == key_id, t.c.revoked_at.is_(None))
                .values(revoked_at=func.now(), updated_at=func.now())
                .returning(*self._columns())
            )
        ).first()
        return _api_key(row) if row else None

    async def revoke_of_owner(self, account_id: uuid.UUID, owner_id: uuid.UUID) -> int:
        t = self.t
        result = await self.session.execute(
            update(t)
            .where(t.c.account_id == account_id, t.c.owner_id == owner_id, t.c.revoked_at.is_(None))
            .values(revoked_at=func.now(), updated_at=func.now())
            .returning(t.c.id)
        )
        return len(result.all())

    async def touch(self, account_id: uuid.UUID, key_id: uuid.UUID, *, every_seconds: int) -> None:
        """Record use, at most once per `every_seconds` (no write on most requests)."""
        t = self.t
        stale = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, every_seconds)
        await self.session.execute(
            update(t)
            .where(
                t.c.account_id == account_id,
                t.c.id == key_id,
                (t.c.last_used_at.is_(None)) | (t.c.last_used_at < stale),
            )
            .values(last_used_at=func.now())
        )


class RefreshTokens:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.refresh_tokens

    async def add(
        self,
        *,
        family_id: uuid.UUID,
        user_id: uuid.UUID,
        account_id: uuid.UUID | None,
        token_hash: bytes,
        expires_at: datetime,
    ) -> None:
        await self.session.execute(
            insert(self.t).values(
                id=new_id(),
                family_id=family_id,
                user_id=user_id,
                claim_account_id=account_id,
                token_hash=token_hash,
                expires_at=expires_at,
            )
        )

    async def locked(self, token_hash: bytes) -> StoredRefreshToken | None:
        """The token, row-locked until the transaction ends (rotation is one at a time)."""
        t = self.t
        query = (
            select(
                t.c.id,
                t.c.family_id,
                t.c.user_id,
                t.c.claim_account_id,
                t.c.expires_at,
                t.c.used_at,
                t.c.revoked_at,
            )
            .where(t.c.token_hash == token_hash)
            .with_for_update()
        )
        row = (await self.session.execute(query)).first()
        return StoredRefreshToken(*row) if row else None

    async def mark_used(self, token_id: uuid.UUID) -> None:
        t = self.t
        await self.session.execute(
            update(t).where(t.c.id == token_id).values(used_at=func.now(), updated_at=func.now())
        )

    async def revoke_family(self, family_id: uuid.UUID) -> None:
        t = self.t
        await self.session.execute(
            update(t)
            .where(t.c.family_id == family_id, t.c.revoked_at.is_(None))
            .values(revoked_at=func.now(), updated_at=func.now())
        )

    async def revoke_of_user(self, user_id: uuid.UUID, account_id: uuid.UUID | None = None) -> None:
        """Every live token of the user (for one account, when given)."""
        t = self.t
        query = update(t).where(t.c.user_id == user_id, t.c.revoked_at.is_(None))
        if account_id is not None:
            query = query.where(t.c.claim_account_id == account_id)
        await self.session.execute(query.values(revoked_at=func.now(), updated_at=func.now()))

    async def remove_of_user(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(self.t).where(self.t.c.user_id == user_id))


class LoginThrottle:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.login_throttle

    async def state(self, email: str, *, lock: bool = False) -> Throttle:
        t = self.t
        if lock:
            await self.session.execute(
                insert(t).values(email=email.lower()).on_conflict_do_nothing()
            )
        query = select(t.c.failures, t.c.lockouts, t.c.locked_until).where(
            t.c.email == email.lower()
        )
        if lock:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return Throttle(row.failures, row.lockouts, row.locked_until) if row else Throttle()

    async def save(self, email: str, state: Throttle) -> None:
        t = self.t
        await self.session.execute(
            update(t)
            .where(t.c.email == email.lower())
            .values(
                failures=state.failures,
                lockouts=state.lockouts,
                locked_until=state.locked_until,
                updated_at=func.now(),
            )
        )

    async def clear(self, email: str) -> None:
        await self.session.execute(delete(self.t).where(self.t.c.email == email.lower()))


def _domain(row: Row) -> Domain:  # type: ignore[type-arg]
    return Domain(
        id=row.id,
        domain=row.domain,
        verification_token=row.verification_token,
        verified_at=row.verified_at,
        created_at=row.created_at,
    )


class Domains:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.domains
        self.rules = tables.domain_rules
        self.roles = tables.roles

    def _columns(self):  # type: ignore[no-untyped-def]
        t = self.t
        return (t.c.id, t.c.domain, t.c.verification_token, t.c.verified_at, t.c.created_at)

    async def add(self, account_id: uuid.UUID, domain: str, token: str) -> Domain | None:
        statement = (
            insert(self.t)
            .values(id=new_id(), account_id=account_id, domain=domain, verification_token=token)
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _domain(row) if row else None

    async def by_id(self, account_id: uuid.UUID, domain_id: uuid.UUID) -> Domain | None:
        t = self.t
        query = select(*self._columns()).where(
            t.c.account_id == account_id, t.c.id == domain_id, t.c.deleted_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return _domain(row) if row else None

    async def listed(self, account_id: uuid.UUID) -> list[Domain]:
        t = self.t
        query = (
            select(*self._columns())
            .where(t.c.account_id == account_id, t.c.deleted_at.is_(None))
            .order_by(t.c.domain)
        )
        return [_domain(row) for row in (await self.session.execute(query)).all()]

    async def mark_verified(self, account_id: uuid.UUID, domain_id: uuid.UUID) -> Domain | None:
        """None when another account has verified the same domain."""
        t = self.t
        statement = (
            update(t)
            .where(t.c.account_id == account_id, t.c.id == domain_id)
            .values(verified_at=func.coalesce(t.c.verified_at, func.now()), updated_at=func.now())
            .returning(*self._columns())
        )
        row = await _savepoint_insert(self.session, statement)
        return _domain(row) if row else None

    async def remove(self, account_id: uuid.UUID, domain_id: uuid.UUID) -> None:
        t = self.t
        await self.session.execute(
            update(t)
            .where(t.c.account_id == account_id, t.c.id == domain_id)
            .values(deleted_at=func.now(), updated_at=func.now())
        )

    def _rules(self):  # type: ignore[no-untyped-def]
        r, d, roles = self.rules, self.t, self.roles
        return (
            select(
                r.c.id,
                r.c.domain_id,
                d.c.domain,
                r.c.role_id,
                roles.c.name.label("role"),
                r.c.scope_type,
                r.c.scope_id,
                r.c.created_at,
            )
            .join(d, d.c.id == r.c.domain_id)
            .join(roles, roles.c.id == r.c.role_id)
            .where(r.c.deleted_at.is_(None))
        )

    @staticmethod
    def _rule(row: Row) -> DomainRule:  # type: ignore[type-arg]
        return DomainRule(
            id=row.id,
            domain_id=row.domain_id,
            domain=row.domain,
            role_id=row.role_id,
            role=row.role,
            scope=GrantScope(ScopeType(row.scope_type), row.scope_id),
            created_at=row.created_at,
        )

    async def add_rule(
        self, account_id: uuid.UUID, *, domain_id: uuid.UUID, role_id: uuid.UUID, scope: GrantScope
    ) -> uuid.UUID | None:
        statement = (
            insert(self.rules)
            .values(
                id=new_id(),
                account_id=account_id,
                domain_id=domain_id,
                role_id=role_id,
                scope_type=scope.type.value,
                scope_id=scope.id,
            )
            .returning(self.rules.c.id)
        )
        row = await _savepoint_insert(self.session, statement)
        return row.id if row else None

    async def rule(self, account_id: uuid.UUID, rule_id: uuid.UUID) -> DomainRule | None:
        r = self.rules
        query = self._rules().where(r.c.account_id == account_id, r.c.id == rule_id)
        row = (await self.session.execute(query)).first()
        return self._rule(row) if row else None

    async def rules_of(
        self, account_id: uuid.UUID, *, domain_id: uuid.UUID | None = None
    ) -> list[DomainRule]:
        r = self.rules
        query = self._rules().where(r.c.account_id == account_id).order_by(r.c.id)
        if domain_id is not None:
            query = query.where(r.c.domain_id == domain_id)
        return [self._rule(row) for row in (await self.session.execute(query)).all()]

    async def rules_for_email_domain(self, account_id: uuid.UUID, domain: str) -> list[DomainRule]:
        """The live rules of verified `domain` in the account."""
        r, d = self.rules, self.t
        query = self._rules().where(
            r.c.account_id == account_id,
            d.c.domain == domain,
            d.c.verified_at.isnot(None),
            d.c.deleted_at.is_(None),
            self.roles.c.deleted_at.is_(None),
        )
        return [self._rule(row) for row in (await self.session.execute(query)).all()]

    async def remove_rules(self, account_id: uuid.UUID, rule_ids: Sequence[uuid.UUID]) -> None:
        r = self.rules
        if rule_ids:
            await self.session.execute(
                update(r)
                .where(r.c.account_id == account_id, r.c.id.in_(list(rule_ids)))
                .values(deleted_at=func.now(), updated_at=func.now())
            )


@dataclass(frozen=True)
class StoredSigningKey:
    kid: str
    private_key_wrapped: bytes
    public_key: bytes


class SigningKeys:
    def __init__(self, session: AsyncSession, tables: IdentityTables) -> None:
        self.session = session
        self.t = tables.signing_keys

    async def lock(self) -> None:
        """Hold the signing-key lock until the transaction ends."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": SIGNING_KEY_LOCK}
        )

    async def active(self) -> StoredSigningKey | None:
        t = self.t
        query = select(t.c.kid, t.c.private_key_wrapped, t.c.public_key).where(
            t.c.retired_at.is_(None)
        )
        row = (await self.session.execute(query)).first()
        return StoredSigningKey(row.kid, row.private_key_wrapped, row.public_key) if row else None

    async def active_kid(self) -> str | None:
        t = self.t
        return (
            await self.session.execute(select(t.c.kid).where(t.c.retired_at.is_(None)))
        ).scalar()

    async def add(self, key: StoredSigningKey) -> None:
        await self.session.execute(
            insert(self.t).values(
                kid=key.kid, private_key_wrapped=key.private_key_wrapped, public_key=key.public_key
            )
        )

    async def retire(self, kid: str) -> None:
        t = self.t
        await self.session.execute(
            update(t).where(t.c.kid == kid, t.c.retired_at.is_(None)).values(retired_at=func.now())
        )

    async def published(self, *, retired_after: datetime) -> list[PublicKey]:
        """The active key and those retired recently enough to verify unexpired tokens."""
        t = self.t
        query = (
            select(t.c.kid, t.c.public_key, t.c.created_at, t.c.retired_at)
            .where((t.c.retired_at.is_(None)) | (t.c.retired_at > retired_after))
            .order_by(t.c.created_at.desc())
        )
        return [
            PublicKey(
                kid=r.kid, public_key=r.public_key, created_at=r.created_at, retired_at=r.retired_at
            )
            for r in (await self.session.execute(query)).all()
        ]


@dataclass(frozen=True)
class Repositories:
    """Every repository on one session (one transaction)."""

    session: AsyncSession
    users: Users
    memberships: Memberships
    authz: AuthzVersions
    leases: AuthzLeases
    roles: Roles
    grants: Grants
    service_accounts: ServiceAccounts
    api_keys: ApiKeys
    refresh_tokens: RefreshTokens
    throttle: LoginThrottle
    domains: Domains
    signing_keys: SigningKeys

    @classmethod
    def on(cls, session: AsyncSession, tables: IdentityTables) -> "Repositories":
        return cls(
            session=session,
            users=Users(session, tables),
            memberships=Memberships(session, tables),
            authz=AuthzVersions(session, tables),
            leases=AuthzLeases(session, tables),
            roles=Roles(session, tables),
            grants=Grants(session, tables),
            service_accounts=ServiceAccounts(session, tables),
            api_keys=ApiKeys(session, tables),
            refresh_tokens=RefreshTokens(session, tables),
            throttle=LoginThrottle(session, tables),
            domains=Domains(session, tables),
            signing_keys=SigningKeys(session, tables),
        )
